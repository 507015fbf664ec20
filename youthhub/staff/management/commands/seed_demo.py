from datetime import date, time

import holidays
from django.core.management.base import BaseCommand
from django.db import transaction

from dropin.models import OpeningException
from dropin.services import pool_ensure, site_ensure
from youthhub.handover.services import handover_demo_seed
from youthhub.staff.models import Role, StaffProfile, Status
from youthhub.staff.services import canned_reply_ensure, staff_create_or_update

DEMO_PASSWORD = "ungarena-demo-2026"
# username, name, role, supervisor, card
DEMO_STAFF = [
    (
        "ingrid",
        "Ingrid",
        Role.PSYCHOLOGIST,
        False,
        {
            "bio": "Jeg liker å høre hva du tenker på – stort eller smått. Ingen dumme spørsmål.",
            "interests": ["film", "books", "nature"],
            "languages": ["nb", "en"],
            "room": "Rom 1",
        },
    ),
    (
        "sara",
        "Sara",
        Role.HEALTH_NURSE,
        False,
        {
            "bio": "Helsesykepleier. Kropp, søvn, sex, prevensjon eller bare en dårlig dag – spør i vei.",
            "interests": ["music", "sport", "food"],
            "languages": ["nb", "en", "pl"],
            "room": "Rom 2",
        },
    ),
    (
        "jonas",
        "Jonas",
        Role.PEER,
        False,
        {
            "bio": "Jeg har selv hatt det tungt som ung. Nå jobber jeg her og vet at det går an å få det bedre.",
            "interests": ["gaming", "music", "film"],
            "languages": ["nb"],
            "room": "Sofakroken",
        },
    ),
    (
        "amir",
        "Amir",
        Role.YOUTH_WORKER,
        False,
        {
            "bio": "Miljøarbeider. Skole, jobb, venner, familie – vi finner ut av det sammen.",
            "interests": ["sport", "gaming", "food"],
            "languages": ["nb", "en", "ar"],
            "room": "Rom 3",
        },
    ),
    (
        "mona",
        "Mona",
        Role.SOCIAL_WORKER,
        True,
        {
            "bio": "Sosionom og leder her. Jeg hjelper deg videre hvis du trenger mer enn en prat.",
            "interests": ["animals", "art"],
            "languages": ["nb", "en"],
            "room": "Kontoret",
        },
    ),
]

# Ready-made replies staff insert and edit before sending (per language; a role or everyone).
DEMO_CANNED = [
    (
        "Velkommen",
        "nb",
        "",
        "Hei, så fint at du tok kontakt! Jeg heter {name}. Hva har du lyst til å snakke om?",
    ),
    (
        "Tar meg tid",
        "nb",
        "",
        "Takk for at du forteller. Jeg leser det du skriver nå – gi meg et lite øyeblikk.",
    ),
    ("Anonymitet", "nb", "", "Du er anonym her. Du trenger ikke si navnet ditt eller hvor du bor."),
    (
        "Akutt",
        "nb",
        "",
        "Hvis du er i fare nå, ring 113. Jeg blir her i chatten mens du ringer hvis du vil.",
    ),
    (
        "Avslutte",
        "nb",
        "",
        "Takk for praten. Du kan alltid komme tilbake – også til meg, hvis du vil.",
    ),
    (
        "Søvn",
        "nb",
        Role.HEALTH_NURSE,
        "Mange sover dårlig når de er stresset. Vil du at vi ser på noen små ting som kan hjelpe?",
    ),
    (
        "Welcome",
        "en",
        "",
        "Hi, good that you got in touch! My name is {name}. What would you like to talk about?",
    ),
    (
        "Emergency",
        "en",
        "",
        "If you are in danger now, call 113. I will stay here in the chat while you call if you want.",
    ),
]


class Command(BaseCommand):
    help = (
        "Seed demo data: a regional chat pool, Ung Arena Tønsberg with its hours and Norwegian "
        "public holidays, four staff and a supervisor."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            pool = pool_ensure(slug="vestfold", name="Ung chat Vestfold")
            # Ung Arena's own hours: Mon-Fri 12-16, Tuesday and Thursday until 18.
            hours = {day: (time(12), time(16)) for day in range(5)}
            hours[1] = hours[3] = (time(12), time(18))
            site = site_ensure(
                slug="tonsberg",
                name="Ung Arena Tønsberg",
                weekly_hours=hours,
                pool=pool,
                ticket_prefix="B",
            )
            year = date.today().year
            closed = holidays.Norway(years=[year, year + 1], language="no", include_sundays=False)
            OpeningException.objects.filter(site=site, opens__isnull=True).delete()
            OpeningException.objects.bulk_create(
                OpeningException(site=site, date=day, note=name[:120])
                for day, name in sorted(closed.items())
            )
            for username, name, role, supervisor, card in DEMO_STAFF:
                staff_create_or_update(
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    display_name=name,
                    is_supervisor=supervisor,
                    sites=[site],
                    card=card,
                )
            for order, (title, language, role, text) in enumerate(DEMO_CANNED):
                canned_reply_ensure(
                    title=title, text=text, language=language, role=role, order=order
                )
            StaffProfile.objects.filter(user__username__in=[s[0] for s in DEMO_STAFF]).update(
                status=Status.AVAILABLE
            )
            partners = handover_demo_seed(password=DEMO_PASSWORD)
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, name, role, supervisor, _ in DEMO_STAFF:
            extra = ", supervisor" if supervisor else ""
            self.stdout.write(f"  {username:8} {name} ({role.label}{extra})")
        for partner in partners:
            self.stdout.write(
                f"  {partner.user.username:8} {partner.display_name} (partner, {partner.service.name})"
            )
        self.stdout.write(
            f"Drop-in kiosk: /dropin/{site.slug}/kiosk/   on a phone: /dropin/{site.slug}/"
        )
