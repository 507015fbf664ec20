from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    PSYCHOLOGIST = "psychologist", "Psychologist"
    HEALTH_NURSE = "health_nurse", "Public-health nurse"
    SOCIAL_WORKER = "social_worker", "Social worker"
    PEER = "peer", "Peer with lived experience (erfaringskonsulent)"
    YOUTH_WORKER = "youth_worker", "Youth worker"
    VOLUNTEER = "volunteer", "Volunteer"
    SPECIALIST = "specialist", "BUP/DPS specialist on site"


class Status(models.TextChoices):
    AVAILABLE = "available", "Available"
    BUSY = "busy", "Busy"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


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

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_role_display()})"

    def public_card(self) -> dict:
        """What a youth may see of this person."""
        return {"id": self.user_id, "display_name": self.display_name, "role": self.role}
