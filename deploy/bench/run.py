"""The benchmark orchestrator: `python -m deploy.bench [options]` (`make bench`).

For each worker count and channel layer it brings up the production layout with
`deploy/cluster up` (its own directory, ports and database, the bench's settings passed with
`--env`), makes the bench staff (dbsetup), logs them in over HTTP, and then, with the load
generator processes (loadgen.py):

1. youthhub: staff dashboards connect; 1,000 idle youth connect (RSS before/after); then each
   step: N conversations start (session, hello, request, accept), talk for `--duration`
   seconds at `--rate` messages per second each (alternating sides, typing before each
   message, a read receipt after each), and end; CPU of every part is sampled around the
   talking window. Steps go up until p99 delivery misses the target.
2. the bare relay (relay.py) on the same Redis, same worker count, same load shape, at the
   same steps.

Sockets go straight to the worker ports, spread client-side (socket i to worker i mod N), for
youthhub and the relay alike. Results: var/bench/results-<time>.json (and latest.json), and
Markdown on standard output.
"""

import argparse
import contextlib
import http.cookiejar
import json
import math
import multiprocessing
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import psutil

from . import loadgen, measure, report

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster"
PYTHON = sys.executable
STAFF_PASSWORD = "Kanelsnurr-med-kaffe-2026"
HOST = "127.0.0.1"

# What the bench's workers run with on top of the production settings of deploy/cluster:
# the limits that protect a real service from one client would stop a load generator that is
# one client pretending to be 1,400 people. Two-factor login is off so staff log in with the
# password alone (docs/benchmarks.md says so).
BENCH_ENV = {
    "YOUTHHUB_REQUIRE_2FA": "0",
    "YOUTHHUB_SESSIONS_PER_MINUTE": "1000000",
    "YOUTHHUB_FRAMES_PER_SECOND": "1000",
    "YOUTHHUB_FRAME_BURST": "1000",
    "YOUTHHUB_MESSAGES_PER_MINUTE": "1000000",
    "YOUTHHUB_LOGINS_PER_MINUTE": "100000",
    "LOG_LEVEL": "WARNING",
}


class BenchError(Exception):
    pass


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def csv_words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def wait_port(port: int, seconds: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"the process for port {port} exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise BenchError(f"nothing answers on {HOST}:{port} after {seconds:.0f}s")
        time.sleep(0.1)


# --- staff logins over HTTP -------------------------------------------------------------


def staff_login(base_url: str, username: str, password: str) -> str:
    """Log in at /staff/login/ like a browser (CSRF cookie and token): the Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base_url + "/staff/login/", timeout=60) as answer:
        html = answer.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise BenchError("no CSRF token on the login page")
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": match[1]}
    ).encode()
    request = urllib.request.Request(base_url + "/staff/login/", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("Origin", base_url)
    request.add_header("Referer", base_url + "/staff/login/")
    with opener.open(request, timeout=120) as answer:
        final = answer.geturl()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    if not session or "/login/" in final:
        raise BenchError(f"login of {username} failed (ended at {final}); is 2FA off?")
    return f"sessionid={session}"


# --- the orchestrator --------------------------------------------------------------------


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.dir = Path(opts.dir).resolve()
        self.out_dir = Path(opts.out_dir).resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.logs = self.out_dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.started = time.monotonic()
        self.generators: list[tuple[multiprocessing.Process, object]] = []
        self.relay_procs: list[subprocess.Popen] = []
        self.cluster_up_now = False
        self.staff: list[dict] = []  # {index, username, id, cookie}
        self.results: dict = {"runs": [], "notes": []}

    # -- time --------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def out_of_time(self) -> bool:
        return self.elapsed() > self.opts.time_limit

    # -- cluster -----------------------------------------------------------------------------

    def cluster(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(CLUSTER), args[0], "--dir", str(self.dir), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        return done

    def cluster_up(self, workers: int, layer: str) -> dict:
        args = ["up", "--workers", str(workers), "--port", str(self.opts.port)]
        args += ["--worker-port", str(self.opts.worker_port)]
        args += ["--redis-port", str(self.opts.redis_port)]
        args += ["--database-url", self.opts.database_url]
        env = {**BENCH_ENV, "YOUTHHUB_CHANNEL_LAYER": layer}
        if self.opts.youthhub_settings:
            env["DJANGO_SETTINGS_MODULE"] = self.opts.youthhub_settings
        env.update(self.opts.worker_env)
        for name, value in sorted(env.items()):
            args += ["--env", f"{name}={value}"]
        say(f"[{self.elapsed():5.0f}s] deploy/cluster up --workers {workers} ({layer} layer)")
        self.cluster_up_now = True
        done = self.cluster(*args, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"deploy/cluster up failed:\n{done.stdout}\n{done.stderr}")
        status = json.loads(self.cluster("status").stdout)
        if not status.get("up"):
            raise BenchError(f"deploy/cluster status says not up: {status}")
        got = status.get("env", {}).get("YOUTHHUB_CHANNEL_LAYER")
        if got != layer:
            raise BenchError(f"the cluster did not take YOUTHHUB_CHANNEL_LAYER={layer} ({got})")
        return status

    def cluster_down(self) -> None:
        if self.cluster_up_now:
            self.cluster("down", timeout=120)
            self.cluster_up_now = False

    def setup_staff(self, count: int, base_url: str) -> None:
        """Bench staff in the database (made once), logged in once per bench run."""
        code = f"from deploy.bench import dbsetup; dbsetup.main({count}, {STAFF_PASSWORD!r})"
        done = self.cluster("manage", "shell", "-c", code, timeout=600)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-SETUP ")), None)
        if done.returncode != 0 or line is None:
            raise BenchError(f"bench setup failed:\n{done.stdout}\n{done.stderr}")
        setup = json.loads(line.split(" ", 1)[1])
        known = {s["username"]: s for s in self.staff}
        missing = [s for s in setup["staff"] if s["username"] not in known]
        if missing:
            say(f"[{self.elapsed():5.0f}s] logging in {len(missing)} staff over HTTP")
            with ThreadPoolExecutor(4) as pool:
                cookies = list(
                    pool.map(
                        lambda s: staff_login(base_url, s["username"], STAFF_PASSWORD), missing
                    )
                )
            for member, cookie in zip(missing, cookies, strict=True):
                known[member["username"]] = {**member, "cookie": cookie}
        self.staff = [{**known[s["username"]], "index": i} for i, s in enumerate(setup["staff"])]

    # -- the bare relay ------------------------------------------------------------------------

    def relay_up(self, workers: int, layer: str, redis_url: str) -> list[int]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "deploy.bench.relay_settings",
            "BENCH_RELAY_LAYER": layer,
            "BENCH_RELAY_REDIS_URL": redis_url,
            "BENCH_RELAY": "1",
        }
        ports = [self.opts.relay_port + i for i in range(workers)]
        for port in ports:
            if port_open(port):
                raise BenchError(f"{HOST}:{port} (relay) is in use")
        for port in ports:
            log = open(self.logs / f"relay-{port}.log", "ab")  # noqa: SIM115 (kept by Popen)
            log.write(f"--- {time.strftime('%H:%M:%S')} relay, {layer} layer\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0"]
                + ["deploy.bench.relay:application"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self.relay_procs.append(proc)
        for port, proc in zip(ports, self.relay_procs, strict=True):
            wait_port(port, 60, proc)
        return [p.pid for p in self.relay_procs]

    def relay_down(self) -> None:
        for proc in self.relay_procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.relay_procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.relay_procs = []

    # -- generators ----------------------------------------------------------------------------

    def generators_up(self) -> None:
        context = multiprocessing.get_context("spawn")
        for index in range(self.opts.generators):
            parent, child = context.Pipe()
            proc = context.Process(target=loadgen.main, args=(index, child), daemon=True)
            proc.start()
            self.generators.append((proc, parent))

    def generators_down(self) -> None:
        for _proc, pipe in self.generators:
            with contextlib.suppress(Exception):
                pipe.send({"cmd": "quit"})
        for proc, pipe in self.generators:
            with contextlib.suppress(Exception):
                if pipe.poll(15):
                    pipe.recv()
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        self.generators = []

    def send_all(self, cmd: str, args_per: list[dict]) -> None:
        for (_, pipe), args in zip(self.generators, args_per, strict=True):
            pipe.send({"cmd": cmd, "args": args})

    def recv_all(self, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        out = []
        for _proc, pipe in self.generators:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise BenchError(f"a load generator did not answer within {timeout:.0f}s")
            answer = pipe.recv()
            if "error" in answer:
                raise BenchError(f"load generator: {answer['error']}\n{answer.get('trace')}")
            out.append(answer)
        return out

    def call(self, cmd: str, args_per: list[dict], timeout: float = 300) -> list[dict]:
        self.send_all(cmd, args_per)
        return self.recv_all(timeout)

    def same(self, args: dict) -> list[dict]:
        return [args for _ in self.generators]

    # -- one target: idle sockets, staff, steps ------------------------------------------------

    def run_target(
        self,
        target: str,
        layer: str,
        workers: int,
        urls: list[str],
        worker_pids: list[int],
        redis_pid: int | None,
        steps: list[int],
        profile: bool,
    ) -> dict:
        opts = self.opts
        gens = len(self.generators)
        groups = {
            "workers": measure.Group(worker_pids),
            "generator": measure.Group([p.pid for p, _ in self.generators]),
            "redis": measure.Group([redis_pid] if redis_pid else []),
        }
        pg_port = urllib.parse.urlsplit(opts.database_url).port or 5432
        pg_pid = measure.listening_pid(pg_port)
        groups["postgres"] = measure.Group([pg_pid] if pg_pid else [], tree=True)
        sampler = measure.Sampler(groups, opts.database_url if target == "youthhub" else None)
        run = {"target": target, "layer": layer, "workers": workers, "steps": []}
        self.results["runs"].append(run)
        self.call("target", self.same({"kind": target, "urls": urls}))

        # Staff dashboards: enough for the biggest step, --per-staff conversations each.
        needed = opts.staff or math.ceil(max(steps) / opts.per_staff)
        staff = self.staff[:needed]
        per = [[] for _ in range(gens)]
        for member in staff:
            per[member["index"] % gens].append(
                {"index": member["index"], "cookie": member.get("cookie")}
            )
        answers = self.call("staff", [{"staff": p} for p in per])
        connected = sum(a["connected"] for a in answers)
        failed = {k: v for a in answers for k, v in a["failed"].items()}
        run["staff"] = {"connected": connected, "failed": failed}
        if connected < len(staff):
            raise BenchError(
                f"{target}: only {connected} of {len(staff)} staff connected: {failed}"
            )
        say(f"[{self.elapsed():5.0f}s] {target}: {connected} staff sockets")

        # Idle youth: memory and CPU per connection.
        time.sleep(1)
        before = sampler.snapshot()
        rss_before = sum(groups["workers"].rss())
        numbers = list(range(100_000, 100_000 + opts.idle))
        answers = self.call(
            "idle",
            [
                {"numbers": numbers[g::gens], "concurrency": opts.connect_concurrency}
                for g in range(gens)
            ],
            timeout=600,
        )
        time.sleep(2)
        after = sampler.snapshot()
        rss_after = sum(groups["workers"].rss())
        connected = sum(a["connected"] for a in answers)
        cpu = measure.Sampler.delta(before, after)
        run["idle"] = {
            "wanted": opts.idle,
            "connected": connected,
            "failed": {k: v for a in answers for k, v in a["failed"].items()},
            "seconds": max(a["seconds"] for a in answers),
            "rss_before_mb": rss_before / 2**20,
            "rss_after_mb": rss_after / 2**20,
            "kb_per_socket": (rss_after - rss_before) / 1024 / connected if connected else None,
            "worker_cpu_ms_per_connect": (
                1000 * cpu["cpu_seconds"]["workers"] / connected if connected else None
            ),
            "cpu": cpu,
        }
        say(
            f"[{self.elapsed():5.0f}s] {target}: {connected}/{opts.idle} idle sockets in "
            f"{run['idle']['seconds']:.0f}s, {run['idle']['kb_per_socket'] or 0:.1f} KB each"
        )

        # A burst: this many more sockets connecting at the same moment (then closed again).
        if opts.burst:
            per_gen = [numbers[g::gens][: math.ceil(opts.burst / gens)] for g in range(gens)]
            answers = self.call("burst", [{"numbers": p} for p in per_gen], timeout=300)
            run["burst"] = {
                "wanted": sum(len(p) for p in per_gen),
                "connected": sum(a["connected"] for a in answers),
                "failed": {k: v for a in answers for k, v in a["failed"].items()},
                "seconds": max(a["seconds"] for a in answers),
            }
            say(
                f"[{self.elapsed():5.0f}s] {target}: burst {run['burst']['connected']}/"
                f"{run['burst']['wanted']} at once in {run['burst']['seconds']:.1f}s"
                + (f", failed: {run['burst']['failed']}" if run["burst"]["failed"] else "")
            )
        self.settle(groups["workers"])

        # Step up while the system keeps up (p50 under the target, nothing lost): that also
        # passes the highest load with p99 under the target (the capacity of the brief).
        first_saturated = None
        for n in steps:
            if self.out_of_time():
                self.results["notes"].append(
                    f"time limit: {target} {layer} {workers}w stopped before {n}"
                )
                break
            step = self.step(n, sampler, groups)
            run["steps"].append(step)
            if not step["keeps_up"]:
                first_saturated = n
                if not opts.keep_going:
                    break
        measured = [s for s in run["steps"] if not s.get("profiled")]
        run["capacity"] = max((s["conversations"] for s in measured if s["ok"]), default=0)
        run["first_miss"] = min(
            (
                s["conversations"]
                for s in measured
                if not s["ok"] and s["conversations"] > run["capacity"]
            ),
            default=None,
        )
        run["capacity_reached"] = run["first_miss"] is not None
        run["throughput_capacity"] = max(
            (s["conversations"] for s in measured if s["keeps_up"]), default=0
        )
        run["first_saturated"] = first_saturated
        # Where the time goes: py-spy on every worker for a step at the first load that did not
        # keep up (or missed p99, or the last one), apart from the measured steps.
        profile_at = first_saturated or run["first_miss"] or (steps[-1] if steps else None)
        if profile and profile_at and not self.out_of_time():
            step = self.step(profile_at, sampler, groups, profile_pids=worker_pids, run=run)
            step["profiled"] = True
            run["steps"].append(step)
        self.call("close", self.same({}))
        return run

    def settle(self, workers: measure.Group, seconds: float = 60) -> None:
        """Wait until the workers are (nearly) idle: no step starts on a backlog left by
        sockets that connected, gave up or closed before it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            before = workers.cpu()
            time.sleep(1)
            if workers.cpu() - before < 0.1 * max(1, len(workers.procs)):
                return

    def step(self, n: int, sampler, groups, profile_pids=None, run=None) -> dict:
        opts = self.opts
        # At least --min-messages messages in the window, so p99 is not just the maximum.
        duration = max(opts.duration, min(opts.max_duration, opts.min_messages / (n * opts.rate)))
        gens = len(self.generators)
        per = [[] for _ in range(gens)]
        for number in range(n):
            staff_index = number // opts.per_staff
            per[staff_index % gens].append({"number": number, "staff": staff_index})
        answers = self.call(
            "prepare",
            [{"conversations": p, "concurrency": opts.prepare_concurrency} for p in per],
            timeout=600,
        )
        ready = sum(a["ready"] for a in answers)
        prepare = {
            "ready": ready,
            "failed": {k: v for a in answers for k, v in a["failed"].items()},
            "seconds": max(a["seconds"] for a in answers),
        }
        start_at = time.time() + 1.0
        self.send_all(
            "run",
            self.same(
                {
                    "start_at": start_at,
                    "duration": duration,
                    "rate": opts.rate,
                    "grace": opts.grace,
                }
            ),
        )
        time.sleep(max(0.0, start_at - time.time()))
        spies = []
        if profile_pids:
            for pid in profile_pids:
                path = (
                    self.out_dir
                    / f"pyspy-{run['target']}-{run['layer']}-{run['workers']}w-{pid}.txt"
                )
                spy = measure.pyspy_start(pid, duration, path)
                if spy is not None:
                    spies.append((spy, path))
        before = sampler.snapshot()
        time.sleep(duration)
        after = sampler.snapshot()
        answers = self.recv_all(duration + opts.grace + 120)
        for spy, _ in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        ended = self.call("end", self.same({}), timeout=600)
        self.settle(groups["workers"])
        delivery = [x for a in answers for x in a["delivery_ms"]]
        slow = sorted(tuple(x) for a in answers for x in a["slow"])
        acks = [x for a in answers for x in a["ack_ms"]]
        cpu = measure.Sampler.delta(before, after)
        sent = sum(a["sent"] for a in answers)
        delivered = sum(a["delivered"] for a in answers)
        lost = sum(a["lost"] for a in answers)
        errors: dict = {}
        frames_in: dict = {}
        frames_out: dict = {}
        for a in answers:
            for key, target in (
                ("errors", errors),
                ("frames_in", frames_in),
                ("frames_out", frames_out),
            ):
                for name, count in a[key].items():
                    target[name] = target.get(name, 0) + count
        summary = report.latency_summary(delivery)
        worker_cpu = cpu["cpu_seconds"]["workers"]
        whole = ready == n and summary["p50"] is not None and lost <= max(1, sent // 1000)
        ok = whole and summary["p99"] < opts.p99_target
        keeps_up = whole and summary["p50"] < opts.p99_target
        step = {
            "conversations": n,
            "prepare": prepare,
            "sockets": sum(a["sockets"] for a in answers),
            "duration": duration,
            "sent": sent,
            "delivered": delivered,
            "lost": lost,
            "messages_per_second": delivered / duration,
            "delivery": summary,
            "ack": report.latency_summary(acks),
            # Deliveries over 100 ms: [seconds after the window opened, ms, receiving side].
            "slow": [[round(t - start_at, 2), ms, side] for t, ms, side in slow[:200]],
            "cpu": cpu,
            "worker_cpu_ms_per_message": 1000 * worker_cpu / delivered if delivered else None,
            "rss_mb": [r / 2**20 for r in groups["workers"].rss()],
            "errors": errors,
            "frames_in": frames_in,
            "frames_out": frames_out,
            "end": {
                "ended": sum(a["ended"] for a in ended),
                "failed": {k: v for a in ended for k, v in a["failed"].items()},
            },
            "ok": ok,
            "keeps_up": keeps_up,
        }
        if spies:
            summary_ = measure.pyspy_summary([path for _, path in spies])
            run["profile"] = {"conversations": n, **summary_}
        d = step["delivery"]
        say(
            f"[{self.elapsed():5.0f}s]   {n:4d} conv: ready {ready}, {step['messages_per_second']:.0f} msg/s, "
            f"p50 {d['p50'] or 0:.1f} p99 {d['p99'] or 0:.1f} max {d['max'] or 0:.0f} ms, lost {lost}, "
            f"workers {cpu['cpu_percent']['workers']:.0f}% pg {cpu['cpu_percent']['postgres']:.0f}% "
            f"gen {cpu['cpu_percent']['generator']:.0f}% busy {cpu['system_busy_percent']:.0f}%"
            f"{' (py-spy)' if spies else ''}{'' if ok else '  p99 MISSED'}"
            f"{'' if keeps_up else ', SATURATED'}"
        )
        return step

    # -- the whole bench ---------------------------------------------------------------------

    def machine(self) -> dict:
        def version(package):
            try:
                return metadata.version(package)
            except metadata.PackageNotFoundError:
                return None

        def command(*argv):
            try:
                return subprocess.run(
                    argv, capture_output=True, text=True, timeout=10
                ).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                return None

        model = None
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        pg_version = None
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(
                self.opts.database_url.rsplit("/", 1)[0] + "/postgres", connect_timeout=5
            ) as conn:
                pg_version = conn.execute("SHOW server_version").fetchone()[0]
        return {
            "cpu_model": model,
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "versions": {
                p: version(p)
                for p in (
                    "Django",
                    "channels",
                    "channels-redis",
                    "daphne",
                    "redis",
                    "websockets",
                    "psycopg",
                    "Twisted",
                )
            },
            "redis_server": command("redis-server", "--version"),
            "postgresql": pg_version,
        }

    def run(self) -> dict:
        opts = self.opts
        self.results["started"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.results["machine"] = self.machine()
        self.results["options"] = {k: v for k, v in vars(opts).items() if k not in ("func",)}
        self.results["bench_env"] = BENCH_ENV
        self.generators_up()
        primary = opts.primary_layer
        staff_needed = max(
            opts.staff, math.ceil(max(opts.steps + opts.relay_steps) / opts.per_staff)
        )
        start_from = 0  # 2 workers start stepping where 1 worker still kept up
        for workers in opts.workers:
            layers = [primary]
            if workers in opts.compare_workers:
                layers += [x for x in opts.layers if x != primary]
            edge: list[int] = []  # youthhub's edge with the primary layer
            relay_steps: list[int] = []
            for layer in layers:
                if self.out_of_time():
                    self.results["notes"].append(f"time limit: skipped {layer} {workers}w")
                    continue
                full = layer == primary
                status = self.cluster_up(workers, layer)
                self.setup_staff(staff_needed, status["workers"][0]["url"])
                urls = [w["url"] for w in status["workers"]]
                pids = [w["pid"] for w in status["workers"]]
                redis_pid = status["redis"]["pid"]
                # The primary layer steps up until youthhub saturates; another layer is measured
                # at the same edge (the capacities and the first loads that missed).
                if full:
                    steps = [n for n in opts.steps if n >= start_from] or opts.steps
                else:
                    steps = edge or opts.steps[:1]
                if "youthhub" in opts.targets:
                    run = self.run_target(
                        "youthhub",
                        layer,
                        workers,
                        urls,
                        pids,
                        redis_pid,
                        steps,
                        full and opts.profile and workers in opts.profile_workers,
                    )
                    if full:
                        edge = sorted(
                            {
                                n
                                for n in (
                                    run["capacity"],
                                    run["first_miss"],
                                    run["throughput_capacity"],
                                    run["first_saturated"],
                                )
                                if n
                            }
                        )
                        start_from = max(start_from, run["throughput_capacity"])
                if full:
                    # The relay at the loads youthhub still managed (the latency ratio at the
                    # same load), then on up its own steps (its capacity, the 200 of the target).
                    managed = {run["capacity"], run["throughput_capacity"]} if edge else set()
                    relay_steps = sorted({n for n in managed if n} | set(opts.relay_steps))
                if "relay" in opts.targets and not self.out_of_time():
                    pids = self.relay_up(workers, layer, status["redis"]["url"])
                    try:
                        urls = [f"http://{HOST}:{self.opts.relay_port + i}" for i in range(workers)]
                        self.run_target(
                            "relay", layer, workers, urls, pids, redis_pid, relay_steps, False
                        )
                    finally:
                        self.relay_down()
                self.write()
        self.results["summary"] = summarise(self.results, opts)
        self.results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.results["seconds"] = round(self.elapsed())
        return self.results

    def write(self) -> Path:
        stamp = self.results.get("started", "now").replace(":", "").replace("-", "")
        path = self.out_dir / f"results-{stamp}.json"
        path.write_text(json.dumps(self.results, indent=1, default=str) + "\n")
        (self.out_dir / "latest.json").write_text(path.read_text())
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.generators_down()
        with contextlib.suppress(Exception):
            self.relay_down()
        with contextlib.suppress(Exception):
            self.cluster_down()


def summarise(results: dict, opts) -> dict:
    """Capacities, and the ratios the targets are about."""
    runs = results["runs"]

    def find(target, layer, workers):
        return next(
            (
                r
                for r in runs
                if (r["target"], r["layer"], r["workers"]) == (target, layer, workers)
            ),
            None,
        )

    def at(run, n):
        if run is None:
            return None
        return next(
            (s for s in run["steps"] if s["conversations"] == n and not s.get("profiled")), None
        )

    out: dict = {}
    primary = opts.primary_layer
    for run in runs:
        if run["layer"] != primary:
            continue
        name = f"{run['target']} {run['workers']}w {primary}"
        top = max((s["conversations"] for s in run["steps"]), default=0)
        out[f"capacity, p99 < {opts.p99_target:.0f} ms: {name}"] = (
            run["capacity"] if run["capacity_reached"] else f">= {top} (not reached)"
        )
        out[f"keeps up (p50 < {opts.p99_target:.0f} ms, nothing lost): {name}"] = (
            run["throughput_capacity"] if run["first_saturated"] else f">= {top} (not reached)"
        )
    for target in ("youthhub", "relay"):
        one, two = find(target, primary, 1), find(target, primary, 2)
        if one and two:
            for key, label in (("capacity", "p99 capacity"), ("throughput_capacity", "keeps up")):
                if one[key]:
                    out[f"{target} 2 workers / 1 worker, {label}"] = round(two[key] / one[key], 2)
    for workers in opts.workers:
        for layer in opts.layers:
            youthhub = find("youthhub", layer, workers)
            if youthhub is None:
                continue
            loads = sorted(
                {s["conversations"] for s in youthhub["steps"]}
                & {
                    youthhub.get("capacity") or 0,
                    youthhub.get("first_miss") or 0,
                    youthhub.get("throughput_capacity") or 0,
                    youthhub.get("first_saturated") or 0,
                    opts.compare_at,
                }
            )
            for n in loads:
                yh, relay = at(youthhub, n), at(find("relay", layer, workers), n)
                if yh is None or yh["delivery"]["p99"] is None:
                    continue
                key = f"{n} conv, {workers}w {layer}"
                out[f"youthhub p50 / p99 ms at {key}"] = (
                    f"{yh['delivery']['p50']:.1f} / {yh['delivery']['p99']:.1f}"
                )
                if relay and relay["delivery"]["p99"]:
                    out[f"relay p50 / p99 ms at {key}"] = (
                        f"{relay['delivery']['p50']:.1f} / {relay['delivery']['p99']:.1f}"
                    )
                    out[f"youthhub / relay p99 at {key}"] = round(
                        yh["delivery"]["p99"] / relay["delivery"]["p99"], 1
                    )
    return out


DEFAULT_STEPS = "5,10,15,20,25,30,40,50,75,100,150,200,300,400"


def parse(argv: list[str] | None = None):
    p = argparse.ArgumentParser(prog="python -m deploy.bench", description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--workers", type=csv_ints, default=[1, 2], help="worker counts (default 1,2)")
    add("--layers", type=csv_words, default=["pubsub", "core"], help="channel layers measured")
    add(
        "--primary-layer",
        default="pubsub",
        help="the layer youthhub is stepped to capacity on; the others are measured at the "
        "same edge (its capacity and first miss) and the relay at the same steps",
    )
    add(
        "--steps",
        type=csv_ints,
        default=csv_ints(DEFAULT_STEPS),
        help=f"youthhub's conversation counts, ascending, up to the first miss ({DEFAULT_STEPS})",
    )
    add(
        "--relay-steps",
        type=csv_ints,
        default=[100, 200, 400],
        help="the relay's steps on top of youthhub's edge (default 100,200,400)",
    )
    add("--compare-at", type=int, default=200, help="a load the latency ratio is reported at")
    add(
        "--staff", type=int, default=0, help="staff dashboards open (default: enough for the steps)"
    )
    add("--idle", type=int, default=1000, help="idle youth sockets held during the steps")
    add("--duration", type=float, default=15, help="seconds of talking per step (at least)")
    add("--min-messages", type=int, default=150, help="a step talks until this many are sent")
    add("--max-duration", type=float, default=30, help="... but no longer than this (seconds)")
    add("--burst", type=int, default=200, help="sockets connecting at once, after the idle ones")
    add("--rate", type=float, default=1.0, help="messages per second per conversation")
    add(
        "--per-staff",
        type=int,
        default=5,
        help="conversations per staff member (1-10; each has one dashboard socket)",
    )
    add("--grace", type=float, default=3, help="seconds to wait for late deliveries")
    add("--p99-target", type=float, default=100.0, help="ms")
    add("--generators", type=int, default=2, help="load generator processes")
    add("--connect-concurrency", type=int, default=20, help="idle sockets connecting at once")
    add("--prepare-concurrency", type=int, default=10, help="conversations starting at once")
    add("--keep-going", action="store_true", help="step on after p99 missed the target")
    add(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy youthhub's workers at its first missed load (primary layer)",
    )
    add(
        "--compare-workers",
        type=csv_ints,
        default=[1],
        help="worker counts the other layers are measured with (default 1)",
    )
    add(
        "--profile-workers",
        type=csv_ints,
        default=[1],
        help="worker counts youthhub is profiled with (default 1)",
    )
    add("--targets", type=csv_words, default=["youthhub", "relay"], help="youthhub,relay")
    add(
        "--youthhub-settings",
        default="",
        help="another settings module for the workers (an experiment); default youthhub.settings",
    )
    add(
        "--worker-env",
        action="append",
        type=name_value,
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the workers (repeatable), e.g. "
        "YOUTHHUB_DB_POOL=false to measure a connection per database call",
    )
    add("--time-limit", type=float, default=16 * 60, help="seconds; later parts are skipped")
    add("--dir", default=str(ROOT / "var" / "bench" / "cluster"), help="deploy/cluster --dir")
    add("--out-dir", default=str(ROOT / "var" / "bench"))
    add("--port", type=int, default=8180, help="the bench cluster's nginx (the load skips it)")
    add("--worker-port", type=int, default=8181)
    add("--redis-port", type=int, default=6391)
    add("--relay-port", type=int, default=8191)
    add("--database-url", default="postgres://postgres@127.0.0.1:5432/youthhub_bench")
    opts = p.parse_args(argv)
    if opts.primary_layer not in opts.layers:
        opts.layers = [opts.primary_layer, *opts.layers]
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    bench = Bench(opts)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        results = bench.run()
    except (BenchError, KeyboardInterrupt) as exc:
        say(f"bench stopped: {exc!r}")
        bench.results["error"] = repr(exc)
        bench.close()
        bench.write()
        return 1
    finally:
        bench.close()
    path = bench.write()
    print(report.markdown(results))
    say(f"results: {path} (and {bench.out_dir / 'latest.json'}); {results['seconds']} s")
    return 0
