import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from youthhub.staff.models import Role
from youthhub.staff.services import staff_create_or_update


class Command(BaseCommand):
    help = "Create or update a staff account. The password is read from standard input."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--display-name")
        parser.add_argument("--supervisor", action="store_true")

    def handle(self, *args, username, role, display_name, supervisor, **options):
        stdin = options.get("stdin") or sys.stdin
        password = stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError(
                "No password on standard input (echo PASSWORD | manage.py addstaff ...)."
            )
        try:
            profile = staff_create_or_update(
                username=username,
                password=password,
                role=role,
                display_name=display_name,
                is_supervisor=supervisor,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        kind = "supervisor" if profile.is_supervisor else "staff"
        self.stdout.write(f"{kind} {username} ({profile.display_name}, {role}) is ready.")
