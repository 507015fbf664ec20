"""Staff accounts: creating and updating them (every write to staff lives here)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import INTERESTS, LANGUAGES, CannedReply, Role, StaffProfile


def staff_create_or_update(
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    is_supervisor: bool = False,
    sites=(),
    card: dict | None = None,
) -> StaffProfile:
    """Create a staff user (or update an existing one's password and profile).

    `card` sets what youth see: bio, interests, languages, room.
    Raises django.core.exceptions.ValidationError for a weak password or an unknown role.
    """
    card = dict(card or {})
    extra = set(card) - {"bio", "interests", "languages", "room"}
    if extra:
        raise ValidationError(f"Unknown card fields: {sorted(extra)}")
    for field, known in (("interests", INTERESTS), ("languages", LANGUAGES)):
        unknown = set(card.get(field, [])) - set(known)
        if unknown:
            raise ValidationError(
                f"Unknown {field} {sorted(unknown)}; choose from: {', '.join(known)}."
            )
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(username=username).first() or User(username=username)
        validate_password(password, user)
        user.set_password(password)
        user.is_active = True
        user.save()
        profile, _ = StaffProfile.objects.update_or_create(
            user=user,
            defaults={
                "display_name": display_name or username,
                "role": role,
                "is_supervisor": is_supervisor,
                **card,
            },
        )
        if sites:
            profile.sites.add(*sites)
    return profile


def canned_reply_ensure(
    *, title: str, text: str, language: str = "nb", role: str = "", order: int = 0
):
    """Create or update the canned reply with this title and language (seeding, imports)."""
    if role and role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    reply, _ = CannedReply.objects.update_or_create(
        title=title,
        language=language,
        defaults={"text": text, "role": role, "order": order, "active": True},
    )
    return reply
