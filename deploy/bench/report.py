"""Numbers out of raw samples, and the Markdown tables `make bench` prints."""


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def latency_summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _pct(value) -> str:
    return "–" if value is None else f"{value:.0f}"


def steps_table(runs: list[dict]) -> str:
    head = (
        "| target | layer | workers | conv. | sockets | msg/s | p50 ms | p99 ms | max ms | lost "
        "| workers CPU % | CPU ms/msg | PG CPU % | Redis CPU % | gen. CPU % | machine busy % "
        "| of it others % | p99 ok | keeps up |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for run in runs:
        for step in run["steps"]:
            cpu = step["cpu"]["cpu_percent"]
            lines.append(
                f"| {run['target']}{' (py-spy)' if step.get('profiled') else ''} | {run['layer']} "
                f"| {run['workers']} | {step['conversations']} | {step['sockets']} "
                f"| {step['messages_per_second']:.0f} | {_ms(step['delivery']['p50'])} "
                f"| {_ms(step['delivery']['p99'])} | {_ms(step['delivery']['max'])} "
                f"| {step['lost']} | {_pct(cpu.get('workers'))} "
                f"| {_ms(step['worker_cpu_ms_per_message'])} | {_pct(cpu.get('postgres'))} "
                f"| {_pct(cpu.get('redis'))} | {_pct(cpu.get('generator'))} "
                f"| {_pct(step['cpu']['system_busy_percent'])} "
                f"| {_pct(step['cpu']['other_percent'])} | {'yes' if step['ok'] else 'NO'} "
                f"| {'yes' if step.get('keeps_up') else 'NO'} |"
            )
    return head + "\n".join(lines) + "\n"


def idle_table(runs: list[dict]) -> str:
    head = (
        "| target | layer | workers | idle connected | failed | seconds | RSS before MB "
        "| RSS after MB | KB per socket | worker CPU ms per connect | burst at once: ok / failed "
        "| burst seconds |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for run in runs:
        idle = run.get("idle")
        if not idle:
            continue
        lines.append(
            f"| {run['target']} | {run['layer']} | {run['workers']} | {idle['connected']} "
            f"| {sum(idle['failed'].values())} | {idle['seconds']:.1f} "
            f"| {idle['rss_before_mb']:.0f} | {idle['rss_after_mb']:.0f} "
            f"| {_ms(idle['kb_per_socket'])} | {_ms(idle['worker_cpu_ms_per_connect'])} "
            f"| {_burst(run.get('burst'))} |"
        )
    return head + "\n".join(lines) + "\n"


def _burst(burst: dict | None) -> str:
    if not burst:
        return "– | –"
    return f"{burst['connected']} / {sum(burst['failed'].values())} | {burst['seconds']:.1f}"


def summary_table(summary: dict) -> str:
    lines = ["| what | value |", "|---|---|"]
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.2f}"
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines) + "\n"


def profile_tables(runs: list[dict]) -> str:
    out = []
    for run in runs:
        profile = run.get("profile")
        if not profile or not profile.get("samples"):
            continue
        out.append(
            f"\n**py-spy, {run['target']} {run['layer']} {run['workers']} worker(s), "
            f"{profile['conversations']} conversations** ({profile['samples']} samples)\n"
        )
        out.append("| where the time goes | % |\n|---|---|")
        out.extend(f"| {row['function']} | {row['percent']} |" for row in profile["buckets"])
        out.append("\n| youthhub functions and DB connects (total time) | % |\n|---|---|")
        out.extend(
            f"| `{row['function']}` | {row['percent']} |" for row in profile.get("ours", [])[:12]
        )
        out.append("\n| top functions (own time) | % |\n|---|---|")
        out.extend(f"| `{row['function']}` | {row['percent']} |" for row in profile["own"][:10])
    return "\n".join(out) + "\n"


def markdown(results: dict) -> str:
    runs = results["runs"]
    parts = [
        "## Steps\n",
        steps_table(runs),
        "\n## Idle sockets\n",
        idle_table(runs),
        "\n## Summary\n",
        summary_table(results.get("summary", {})),
    ]
    profiles = profile_tables(runs)
    if profiles.strip():
        parts += ["\n## Profiles\n", profiles]
    return "\n".join(parts)
