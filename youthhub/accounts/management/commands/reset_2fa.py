from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from youthhub.accounts import twofactor


class Command(BaseCommand):
    help = (
        "Remove a user's two-factor devices (a lost or new phone): their open sessions stop "
        "working at once and the next login enrols an authenticator app again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        count = twofactor.reset(user)
        self.stdout.write(
            f"{username}: {count} two-factor device(s) removed; the next login enrols again."
        )
