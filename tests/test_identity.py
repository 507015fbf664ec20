"""Anonymous identity over HTTP: session, return code, resume. Nothing identifying stored."""

import pytest
from django.db import connection

from chat import services
from chat.models import Youth


@pytest.mark.django_db
def test_session_returns_token_and_alias_and_stores_only_a_hash(client):
    response = client.post(
        "/api/youth/session", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Mozilla/5.0 TestPhone"
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "alias"}
    assert len(body["token"]) >= 40
    youth = Youth.objects.get()
    assert youth.alias == body["alias"]
    assert youth.token_hash == services.hash_token(body["token"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM chat_youth")
        row = " ".join(str(v) for v in cursor.fetchone())
    assert body["token"] not in row
    assert "203.0.113.7" not in row and "TestPhone" not in row


@pytest.mark.django_db
def test_session_requires_post(client):
    assert client.get("/api/youth/session").status_code == 405
    assert Youth.objects.count() == 0


@pytest.mark.django_db
def test_session_creation_is_rate_limited(client, settings):
    settings.YOUTHHUB_SESSIONS_PER_MINUTE = 3
    codes = [client.post("/api/youth/session").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    assert Youth.objects.count() == 3


@pytest.mark.django_db
def test_return_code_resumes_on_another_device_with_a_new_token(client):
    token = client.post("/api/youth/session").json()["token"]
    response = client.post("/api/youth/return-code", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201
    code = response.json()["return_code"]
    assert len(code) == 14 and code.count("-") == 2
    youth = Youth.objects.get()
    assert code.replace("-", "")[4:] not in youth.return_code_hash  # only the scrypt hash

    resumed = client.post(
        "/api/youth/resume",
        {"return_code": code.lower().replace("-", " ")},
        content_type="application/json",
    )
    assert resumed.status_code == 200
    new_token = resumed.json()["token"]
    assert new_token != token
    assert services.youth_authenticate(new_token) == youth
    with pytest.raises(services.ServiceError) as exc:
        services.youth_authenticate(token)  # the old device lost access
    assert exc.value.code == "unauthorized"


@pytest.mark.django_db
def test_return_code_needs_a_valid_token(client):
    response = client.post("/api/youth/return-code", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.django_db
def test_wrong_codes_lock_the_code_then_the_right_one_waits(make_youth):
    youth, _ = make_youth()
    code = services.youth_return_code_issue(youth=youth)
    selector = code[:4]
    wrong_secret = "22222222" if code[5:14].replace("-", "") != "22222222" else "33333333"
    for _ in range(services.RETURN_CODE_MAX_FAILURES):
        with pytest.raises(services.ServiceError) as exc:
            services.youth_resume(return_code=selector + wrong_secret)
        assert exc.value.code == "bad_code"
    with pytest.raises(services.ServiceError) as exc:
        services.youth_resume(return_code=code)
    assert exc.value.code == "rate_limited"
    youth.refresh_from_db()
    assert youth.return_code_locked_until is not None


@pytest.mark.django_db
def test_resume_attempts_are_rate_limited_overall(client, settings):
    settings.YOUTHHUB_RESUMES_PER_MINUTE = 2
    codes = [
        client.post(
            "/api/youth/resume", {"return_code": "2222-2222-2222"}, content_type="application/json"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"return_code": 5}'])
def test_resume_bad_bodies_get_clear_errors(client, body):
    response = client.post("/api/youth/resume", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("bad_json", "bad_request")
