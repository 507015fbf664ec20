"""Reads about staff: canned replies and who is on this shift."""

from .models import CannedReply, StaffProfile


def canned_replies_for(profile: StaffProfile) -> list[dict]:
    """The active canned replies for this person's role and for every role, all languages
    (staff pick the youth's language in the dashboard)."""
    replies = CannedReply.objects.filter(active=True).filter(role__in=["", profile.role])
    return [reply.card() for reply in replies]
