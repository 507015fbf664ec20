"""Bench data in the cluster's database, run inside `deploy/cluster manage shell -c`:

    from deploy.bench import dbsetup; dbsetup.main(COUNT, PASSWORD)

A chat pool `bench` with one arena, COUNT staff accounts `bench-staff-NNN` (made with the
same service as `manage.py addstaff`, only those missing: hashing a password costs ~0.3 s)
serving it with capacity 10, and any conversation a crashed run left open in that pool
closed, so every staff member starts with room for 10 chats. Prints one JSON line.
"""

import json

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation
from dropin.models import Pool, Site
from youthhub.staff.models import StaffProfile
from youthhub.staff.services import staff_create_or_update

PREFIX = "bench-staff-"


def username(index: int) -> str:
    return f"{PREFIX}{index:03d}"


def main(count: int, password: str) -> dict:
    pool, _ = Pool.objects.get_or_create(slug="bench", defaults={"name": "Bench chat"})
    site, _ = Site.objects.get_or_create(
        slug="bench", defaults={"name": "Bench arena", "pool": pool, "ticket_prefix": "B"}
    )
    users = get_user_model().objects
    existing = set(
        users.filter(username__startswith=PREFIX, staff_profile__isnull=False).values_list(
            "username", flat=True
        )
    )
    created = 0
    for index in range(1, count + 1):
        if username(index) not in existing:
            staff_create_or_update(
                username=username(index),
                password=password,
                role="youth_worker",
                display_name=f"Bench {index}",
                sites=[site],
            )
            created += 1
    with transaction.atomic():
        profiles = StaffProfile.objects.filter(user__username__startswith=PREFIX)
        for profile in profiles:
            profile.sites.add(site)
        profiles.update(capacity=10)
        closed = Conversation.objects.filter(pool=pool, state__in=Conversation.OPEN_STATES).update(
            state=Conversation.State.ABANDONED, ended_at=timezone.now()
        )
    ids = dict(users.filter(username__startswith=PREFIX).values_list("username", "id"))
    result = {
        "pool": pool.slug,
        "created": created,
        "staff": [{"username": username(i), "id": ids[username(i)]} for i in range(1, count + 1)],
        "closed_leftovers": closed,
    }
    print("BENCH-SETUP " + json.dumps(result), flush=True)
    return result
