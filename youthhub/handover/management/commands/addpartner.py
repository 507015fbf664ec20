import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from youthhub.handover.services import partner_create_or_update


class Command(BaseCommand):
    help = (
        "Create or update a partner account (someone at a receiving service). The password is "
        "read from standard input."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--service", required=True, help="the service's slug")
        parser.add_argument("--display-name")

    def handle(self, *args, username, service, display_name, **options):
        stdin = options.get("stdin") or sys.stdin
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError(
                "No password on standard input (echo PASSWORD | manage.py addpartner ...)."
            )
        try:
            profile = partner_create_or_update(
                username=username,
                password=password,
                service_slug=service,
                display_name=display_name,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"partner {username} ({profile.display_name}, {profile.service.name}) is ready."
        )
