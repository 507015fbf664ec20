"""Fill a demo or test database with weeks of simulated traffic (youthhub/stats/simulate.py)."""

from datetime import date, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from youthhub.stats.simulate import MAX_WEEKS, default_end, simulate


class Command(BaseCommand):
    help = (
        "Replay weeks of realistic anonymous chat and drop-in traffic through the real services "
        "on a simulated clock (the demo pool, arena and staff of seed_demo), ending yesterday. "
        "For demo and test databases only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--weeks", type=int, default=2, help=f"1-{MAX_WEEKS} (default 2)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--end", type=date.fromisoformat, default=None, help="last day, YYYY-MM-DD (Oslo)"
        )
        parser.add_argument(
            "--load", type=float, default=1.0, help="scales every arrival rate (default 1.0)"
        )
        parser.add_argument(
            "--fanout",
            action="store_true",
            help="keep the after-commit fan-out to the (in-memory) channel layer: slower",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run on a database other than the embedded SQLite one",
        )

    def handle(self, *args, weeks, seed, end, load, fanout, force, **options):
        if not 1 <= weeks <= MAX_WEEKS:
            raise CommandError(f"--weeks must be 1..{MAX_WEEKS}.")
        if not 0 < load <= 10:
            raise CommandError("--load must be above 0 and at most 10.")
        engine = settings.DATABASES["default"]["ENGINE"]
        if not engine.endswith("sqlite3") and not force:
            raise CommandError(
                "This writes thousands of synthetic conversations, and the demo staff with the "
                "demo password, into the database. It is meant for the embedded demo database; "
                "add --force to run it on this one anyway (never on production)."
            )
        end = end or default_end()
        if end >= default_end() + timedelta(days=1):
            raise CommandError("--end must be before today: the simulation replays the past.")
        days = weeks * 7
        start = end - timedelta(days=days - 1)
        verbose = options.get("verbosity", 1) >= 2
        self.stdout.write(f"Simulating {start} .. {end} (seed {seed}, load {load}) ...")
        summary = simulate(
            start=start,
            days=days,
            seed=seed,
            load=load,
            fanout=fanout,
            log=self.stdout.write if verbose else None,
        )
        for line in summary.lines():
            self.stdout.write(f"  {line}")
        per_day = summary.contacts / max(summary.days, 1)
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary.contacts} contacts ({per_day:.0f} a day) in {summary.elapsed_seconds} s."
            )
        )
