"""Who is acting: an anonymous youth or a logged-in staff member."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .models import Youth


@dataclass(frozen=True)
class Actor:
    kind: str  # "youth" | "staff" | "partner"
    youth: Youth | None = None
    user: AbstractBaseUser | None = None

    @classmethod
    def for_youth(cls, youth: Youth) -> "Actor":
        return cls(kind="youth", youth=youth)

    @classmethod
    def for_staff(cls, user) -> "Actor":
        return cls(kind="staff", user=user)

    @classmethod
    def for_partner(cls, user) -> "Actor":
        """Someone from a receiving service in the chat for a warm handover."""
        return cls(kind="partner", user=user)
