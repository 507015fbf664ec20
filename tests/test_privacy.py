"""No youth address reaches the application or a log line."""

import io
import logging

import pytest
from django.core.management import CommandError, call_command

from youthhub.privacy import RedactAddresses, StripClientAddress, redact


@pytest.mark.parametrize(
    "line",
    [
        "WebSocket ['203.0.113.9', 51234] open and established",
        "HTTP GET request for ::ffff:10.1.2.3",
        "client 2001:db8::1 connected",
        "fe80::1ff:fe23:4567:890a said hi",
    ],
)
def test_redact_removes_ipv4_and_ipv6_addresses(line):
    cleaned = redact(line)
    for fragment in ("203.0.113.9", "10.1.2.3", "2001:db8::1", "fe80::1ff"):
        assert fragment not in cleaned


def test_redact_leaves_times_versions_and_ids_alone():
    text = "at 12:30:15 seq 10.5 v1.2.3 conversation 3f2a-11"
    assert redact(text) == text


def test_log_filter_applies_to_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactAddresses())
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("peer %s", "198.51.100.23")
        try:
            raise ValueError("bad peer 198.51.100.24")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "198.51.100" not in output and "[address]" in output


@pytest.mark.asyncio
async def test_the_application_never_sees_the_client_address():
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {
        "type": "http",
        "client": ("203.0.113.9", 4444),
        "headers": [(b"x-forwarded-for", b"203.0.113.9"), (b"host", b"localhost")],
    }
    await StripClientAddress(app)(scope, None, None)
    assert seen["client"] is None
    assert seen["headers"] == [(b"host", b"localhost")]


@pytest.mark.django_db
def test_addstaff_reads_the_password_from_stdin(django_user_model):
    out = io.StringIO()
    call_command(
        "addstaff",
        "kari",
        "--role",
        "peer",
        "--display-name",
        "Kari",
        stdin=io.StringIO("a-long-enough-passphrase-7\n"),
        stdout=out,
    )
    user = django_user_model.objects.get(username="kari")
    assert user.check_password("a-long-enough-passphrase-7")
    assert user.staff_profile.role == "peer" and user.staff_profile.display_name == "Kari"
    assert "kari" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["", "short", "password123456"])
def test_addstaff_refuses_missing_or_weak_passwords(django_user_model, password):
    with pytest.raises(CommandError):
        call_command("addstaff", "kari", "--role", "peer", stdin=io.StringIO(password + "\n"))
    assert not django_user_model.objects.filter(username="kari").exists()


@pytest.mark.django_db
def test_seed_demo_is_repeatable(django_user_model):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert django_user_model.objects.filter(staff_profile__isnull=False).count() == 5
    assert django_user_model.objects.filter(staff_profile__is_supervisor=True).count() == 1
    from youthhub.staff.management.commands.seed_demo import DEMO_CANNED
    from youthhub.staff.models import CannedReply

    assert CannedReply.objects.count() == len(DEMO_CANNED)  # seeded once, not twice
