"""Key rotation, step 2 (docs/operations.md § Rotate keys): re-wrap every data key under the
current master key (the first of YOUTHHUB_DATA_KEYS), so older master keys can be dropped."""

from django.core.management.base import BaseCommand

from youthhub import crypto
from youthhub.keys import keys_by_master, rewrap_keys


class Command(BaseCommand):
    help = (
        "Re-wrap every conversation, handover and consultation data key that an older master key wraps under "
        "the current one (the first entry of YOUTHHUB_DATA_KEYS). Content is not re-encrypted. "
        "Safe to stop and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="only show how many data keys each master key wraps; change nothing",
        )

    def handle(self, *args, check=False, **options):
        current = crypto.keyring().current_id
        if not check:
            for label, n in rewrap_keys().items():
                self.stdout.write(f"{label}: {n} re-wrapped under {current}")
        older = 0
        for label, counts in keys_by_master().items():
            for key_id, n in sorted(counts.items()):
                self.stdout.write(f"{label}: {n} wrapped by {key_id}")
                older += n if key_id != current else 0
        if older:
            self.stdout.write(f"{older} data keys still need an older master key.")
        else:
            self.stdout.write(
                f"Every data key is wrapped by {current}: older master keys may be removed "
                "from YOUTHHUB_DATA_KEYS (keep a copy until the backups made before now expire)."
            )
