"""`manage.py simulate_waits --days 20 --seed 1`: how far off is the waiting-time estimate?

Runs the seeded queue simulation (dropin/simulation.py) and prints the estimator's error next
to naive baselines. No database is touched. Results are discussed in docs/wait-estimate.md.
"""

from django.core.management.base import BaseCommand, CommandError

from dropin.simulation import NAIVE_CONSTANT, NAIVE_MINUTES_PER_POSITION, simulate_days


class Command(BaseCommand):
    help = "Simulate days of the chat queue and report the wait estimate's error (MAE)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=20, help="days (seeds) to simulate")
        parser.add_argument("--seed", type=int, default=1, help="first seed")
        parser.add_argument(
            "--load", type=float, default=1.0, help="scale the arrival rates (1.3: busy day)"
        )
        parser.add_argument(
            "--no-abandon", action="store_true", help="youth wait however long it takes"
        )

    def handle(self, *args, days, seed, load, no_abandon, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        if load <= 0:
            raise CommandError("--load must be positive")
        params = {"load": load}
        if no_abandon:
            params["patience_median"] = None
        result = simulate_days(days, seed, **params)
        a = result.accuracy
        daily = result.daily_mae_seconds
        out = self.stdout.write
        out(f"Simulated {days} day(s), seeds {seed}-{seed + days - 1}, load {load:g}")
        out("")
        rows = [
            ("requests", f"{a.n_requests} ({a.n_requests / days:.0f} a day)"),
            ("answered", str(a.n_answered)),
            ("abandoned", f"{a.n_abandoned} ({_pct(a.n_abandoned / a.n_requests)})"),
            ("mean wait", _s(a.mean_wait_seconds)),
            ("90th percentile wait", _s(a.p90_wait_seconds)),
            ("MAE (estimate)", _s(a.mae_seconds)),
            ("median absolute error", _s(a.median_abs_error_seconds)),
            ("bias (estimate - actual)", _s(a.bias_seconds, signed=True)),
            ("daily MAE, min-max", f"{min(daily):.0f}-{max(daily):.0f} s"),
            ("inside shown range", _pct(a.share_in_range)),
            ("wait above range (too hopeful)", _pct(a.share_too_short)),
            ("wait below range (too gloomy)", _pct(a.share_too_long)),
            ("MAE baseline: always 0", _s(a.mae_zero_seconds)),
            (f"MAE baseline: always {NAIVE_CONSTANT} s", _s(a.mae_constant_seconds)),
            (
                f"MAE baseline: position x {NAIVE_MINUTES_PER_POSITION} min",
                _s(a.mae_position_seconds),
            ),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            out(f"  {label:<{width}}  {value}")
        out("")
        out(f"  {'by what was shown':<18} {'answered':>8} {'MAE':>7} {'bias':>7} {'in range':>9}")
        for name, b in result.breakdown.items():
            if not b.n_answered:
                continue
            out(
                f"  {name:<18} {b.n_answered:>8} {_s(b.mae_seconds):>7} "
                f"{_s(b.bias_seconds, signed=True):>7} {_pct(b.share_in_range):>9}"
            )


def _s(seconds: float, signed: bool = False) -> str:
    return f"{round(seconds):+d} s" if signed else f"{round(seconds)} s"


def _pct(share: float) -> str:
    return f"{100 * share:.0f} %"
