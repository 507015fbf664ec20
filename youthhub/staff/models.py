from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PSYCHOLOGIST = "psychologist", _("Psychologist")
    HEALTH_NURSE = "health_nurse", _("Public-health nurse")
    SOCIAL_WORKER = "social_worker", _("Social worker")
    PEER = "peer", _("Peer with lived experience (erfaringskonsulent)")
    YOUTH_WORKER = "youth_worker", _("Youth worker")
    VOLUNTEER = "volunteer", _("Volunteer")
    SPECIALIST = "specialist", _("BUP/DPS specialist on site")


# How a role is named to youth: plain words, translated (frontend/locale; bokmål by default).
YOUTH_ROLE_LABELS = {
    Role.PSYCHOLOGIST: _("Psychologist"),
    Role.HEALTH_NURSE: _("School nurse"),
    Role.SOCIAL_WORKER: _("Social worker"),
    Role.PEER: _("Peer worker – has been there too"),
    Role.YOUTH_WORKER: _("Youth worker"),
    Role.VOLUNTEER: _("Volunteer"),
    Role.SPECIALIST: _("Specialist from BUP/DPS"),
}


class Status(models.TextChoices):
    AVAILABLE = "available", _("Available")
    BUSY = "busy", _("Busy")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


# What youth can match staff on ("people who also like music"). Youth pick these in their
# browser only: a youth's interests are never sent to the server.
INTERESTS = {
    "film": _("Films and series"),
    "music": _("Music"),
    "gaming": _("Gaming"),
    "sport": _("Sports and training"),
    "books": _("Books"),
    "art": _("Drawing and art"),
    "nature": _("Nature and the outdoors"),
    "animals": _("Animals"),
    "fashion": _("Clothes and fashion"),
    "food": _("Food and baking"),
}

LANGUAGES = {
    "nb": "Norsk",
    "en": "English",
    "ar": "العربية",
    "so": "Soomaali",
    "pl": "Polski",
    "uk": "Українська",
}


class StaffProfile(models.Model):
    """What makes a user a staff member. A user without a profile is not staff."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    display_name = models.CharField(max_length=80)
    role = models.CharField(max_length=32, choices=Role.choices)
    is_supervisor = models.BooleanField(default=False)
    capacity = models.PositiveSmallIntegerField(default=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE)
    sites = models.ManyToManyField("dropin.Site", blank=True, related_name="staff")
    bio = models.CharField(
        max_length=280, blank=True, help_text="A few words to youth, in their language."
    )
    interests = models.JSONField(
        default=list, blank=True, help_text=f"Any of: {', '.join(INTERESTS)}"
    )
    languages = models.JSONField(
        default=list, blank=True, help_text=f"Codes, e.g. {', '.join(LANGUAGES)}"
    )
    # Where a called drop-in ticket meets this person ("Rom 2").
    room = models.CharField(max_length=40, blank=True)
    # Last sign of life from a dashboard (hello, ping, status); "on now" needs a recent one.
    seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_role_display()})"

    def public_card(self) -> dict:
        """What a youth may see of this person."""
        return {"id": self.user_id, "display_name": self.display_name, "role": self.role}

    def youth_card(self) -> dict:
        """The card youth choose from: who this is, in their own words. No contact data."""
        return {
            **self.public_card(),
            "role_label": YOUTH_ROLE_LABELS[self.role],
            "bio": self.bio,
            "interests": list(self.interests),
            "languages": list(self.languages),
        }


class CannedReply(models.Model):
    """A ready-made reply staff insert and edit before sending; managed in the admin."""

    title = models.CharField(max_length=60)
    text = models.TextField(max_length=2000)
    # Blank: for every role.
    role = models.CharField(max_length=32, choices=Role.choices, blank=True)
    language = models.CharField(max_length=8, default="nb", help_text="e.g. nb, en")
    order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["language", "order", "title"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return f"{self.title} ({self.language})"

    def card(self) -> dict:
        return {"id": self.pk, "title": self.title, "text": self.text, "language": self.language}
