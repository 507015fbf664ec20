from datetime import time

from django.core.management.base import BaseCommand

from dropin.services import site_ensure
from youthhub.staff.models import Role, StaffProfile, Status
from youthhub.staff.services import staff_create_or_update

DEMO_PASSWORD = "ungarena-demo-2026"
DEMO_STAFF = [
    ("ingrid", "Ingrid", Role.PSYCHOLOGIST, False),
    ("sara", "Sara", Role.HEALTH_NURSE, False),
    ("jonas", "Jonas", Role.PEER, False),
    ("amir", "Amir", Role.YOUTH_WORKER, False),
    ("mona", "Mona", Role.SOCIAL_WORKER, True),
]


class Command(BaseCommand):
    help = "Seed demo data: one arena with opening hours, four staff and a supervisor."

    def handle(self, *args, **options):
        # Ung Arena's own hours: Mon-Fri 12-16, Tuesday and Thursday until 18.
        hours = {day: (time(12), time(16)) for day in range(5)}
        hours[1] = hours[3] = (time(12), time(18))
        site = site_ensure(slug="tonsberg", name="Ung Arena Tønsberg", weekly_hours=hours)
        for username, name, role, supervisor in DEMO_STAFF:
            staff_create_or_update(
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                display_name=name,
                is_supervisor=supervisor,
                sites=[site],
            )
        StaffProfile.objects.filter(user__username__in=[s[0] for s in DEMO_STAFF]).update(
            status=Status.AVAILABLE
        )
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, name, role, supervisor in DEMO_STAFF:
            extra = ", supervisor" if supervisor else ""
            self.stdout.write(f"  {username:8} {name} ({role.label}{extra})")
