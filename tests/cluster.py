"""The production layout on loopback for tests: `deploy/cluster` (nginx, N Daphne workers, a
Redis of its own, a database of its own) in a temporary directory on free ports, plus the
clients to drive it from outside, as a phone and a staff browser would: HTTP through nginx
with cookies, a real staff login (password and TOTP code), WebSockets (`websockets`).

Fixtures (import them into a test module, or name this module in `pytest_plugins`):
- `make_cluster(workers=2, env=None)`: a running cluster, one per (workers, env) for the whole
  session, stopped and its database dropped at the end;
- `cluster`: `make_cluster(2)`, or `make_cluster(N)` with
  `@pytest.mark.parametrize("cluster", [N], indirect=True)`.

Nothing here uses the shared default ports (8080, 8101.., 6390) or the youthhub_cluster
database, so a cluster someone runs by hand is left alone. The database is a new one on the
test run's PostgreSQL (DATABASE_URL, tests/services.py). Without nginx or redis-server the
fixtures skip, and with YOUTHHUB_REQUIRE_SERVICES=1 (.ci/run) they fail.
"""

import hashlib
import hmac
import http.cookiejar
import inspect
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "cluster"
DEMO_PASSWORD = "ungarena-demo-2026"  # youthhub/staff/management/commands/seed_demo.py
# The user agent every client here sends: it must turn up in no log.
USER_AGENT = "YouthhubClusterAgent/1.0 (test phone)"
_SBIN = ":/usr/local/sbin:/usr/sbin:/sbin"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free ports (workers get base, base + 1 ...)."""
    for _ in range(200):
        base = 20000 + secrets.randbelow(20000)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def totp(key_hex: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 code, as django-otp's TOTPDevice checks it (SHA-1, 30 s, 6 digits, t0 = 0)."""
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(bytes.fromhex(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 10**digits:0{digits}d}"


class Answer:
    def __init__(self, status: int, headers, body: bytes, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


class HttpClient:
    """urllib with a cookie jar and our user agent: what a browser sends, minus the browser."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, path: str, data: bytes | None = None, headers=None) -> Answer:
        url = path if path.startswith("http") else self.base_url + path
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with self.opener.open(request, timeout=15) as answer:
                return Answer(answer.status, answer.headers, answer.read(), answer.geturl())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read(), url)

    def get(self, path: str, headers=None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, fields: dict) -> Answer:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.base_url,
            "Referer": self.base_url + path,
        }
        body = urllib.parse.urlencode(fields).encode()
        return self.request("POST", path, body, headers)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


class Cluster:
    """One `deploy/cluster` in `directory`; every method runs the script, as a person would."""

    def __init__(self, directory: Path, workers: int, database_url: str, env=None):
        self.dir = directory
        self.workers = workers
        self.database_url = database_url
        self.env = dict(env or {})
        self.port = free_port()
        self.redis_port = free_port()
        self.worker_port = free_port_range(workers)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.up_seconds: float | None = None
        self._seeded = False
        self._staff_cookies: dict[str, str] = {}

    # --- the script ---

    def run(self, *args: str, timeout: float = 120, check: bool = True, input=None):
        command, rest = args[0], args[1:]
        done = subprocess.run(
            [str(SCRIPT), command, "--dir", str(self.dir), *rest],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"deploy/cluster {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}"
            )
        return done

    def up(self) -> None:
        args = ["up", "--workers", str(self.workers), "--port", str(self.port)]
        args += ["--redis-port", str(self.redis_port), "--worker-port", str(self.worker_port)]
        args += ["--database-url", self.database_url, "--no-install"]
        args += ["--stop-with", str(os.getpid())]  # a test run that dies leaves nothing running
        for name, value in self.env.items():
            args += ["--env", f"{name}={value}"]
        started = time.monotonic()
        self.run(*args, timeout=300)
        self.up_seconds = time.monotonic() - started

    def down(self) -> None:
        self.run("down", timeout=120, check=False)

    def status(self) -> dict:
        return json.loads(self.run("status", check=False).stdout)

    def kill_worker(self, index: int, signal: str = "TERM") -> dict:
        return json.loads(self.run("kill-worker", str(index), "--signal", signal).stdout)

    def start_worker(self, index: int) -> None:
        self.run("start-worker", str(index))

    def restart_redis(self, signal: str = "TERM", down_seconds: float = 0) -> dict:
        args = ["restart-redis", "--signal", signal, "--down", str(down_seconds)]
        return json.loads(self.run(*args, timeout=120).stdout)

    def manage(self, *args: str, input=None) -> str:
        return self.run("manage", *args, timeout=300, input=input).stdout

    # --- logs ---

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def worker_log(self, index: int) -> Path:
        return self.logs / f"worker-{index}.log"

    def ws_connects(self, path: str = "/ws/") -> dict[int, int]:
        """How many WebSockets each worker has accepted so far (its access log's WSCONNECT
        lines): which worker nginx gave a socket to, without telling the client."""
        counts = {}
        for index in range(1, self.workers + 1):
            try:
                text = self.worker_log(index).read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            counts[index] = text.count(f'"WSCONNECT {path}')
        return counts

    # --- data and logins ---

    def seed_demo(self) -> None:
        if not self._seeded:
            self.manage("seed_demo")
            self._seeded = True

    def staff_cookie(self, username: str = "ingrid") -> str:
        """A logged-in staff session (the demo user, a TOTP device made for the test, the real
        login pages through nginx): the Cookie header for its sockets."""
        if username not in self._staff_cookies:
            self.seed_demo()
            key = secrets.token_hex(20)
            self.manage(
                "shell",
                "-c",
                "from django.contrib.auth import get_user_model\n"
                "from django_otp.plugins.otp_totp.models import TOTPDevice\n"
                f"user = get_user_model().objects.get(username={username!r})\n"
                "TOTPDevice.objects.filter(user=user).delete()\n"
                f"TOTPDevice.objects.create(user=user, name='test', key={key!r}, confirmed=True)\n",
            )
            self._staff_cookies[username] = self._login(username, key)
        return self._staff_cookies[username]

    def _login(self, username: str, key: str) -> str:
        client = HttpClient(self.url)
        form = client.get("/staff/login/")
        assert form.status == 200, form.status
        answer = client.post_form(
            "/staff/login/",
            {
                "username": username,
                "password": DEMO_PASSWORD,
                "csrfmiddlewaretoken": _csrf_token(form.text),
            },
        )
        assert answer.status == 200 and "/code/" in answer.url, (answer.status, answer.url)
        code_path = urllib.parse.urlsplit(answer.url)
        code_path = code_path.path + ("?" + code_path.query if code_path.query else "")
        done = client.post_form(
            code_path, {"code": totp(key), "csrfmiddlewaretoken": _csrf_token(answer.text)}
        )
        assert done.status == 200 and "/code/" not in done.url, (done.status, done.url)
        session = client.cookie("sessionid")
        assert session, "no session cookie after the login"
        return f"sessionid={session}"

    def youth_token(self) -> str:
        answer = HttpClient(self.url).request("POST", "/api/youth/session")
        assert answer.status == 201, (answer.status, answer.text)
        return answer.json()["token"]

    # --- WebSockets ---

    def connect(self, path: str, cookie: str | None = None, *, worker_url: str | None = None):
        """An open WebSocket through nginx, or straight to a worker's `worker_url` (close it,
        or use it in a `with`)."""
        from websockets.sync.client import connect

        # websockets 17.1+ wants a `with` unless told that a plain connection is meant.
        legacy = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
        return connect(
            (worker_url.replace("http", "ws", 1) if worker_url else self.ws_url) + path,
            origin=self.url,
            additional_headers={"Cookie": cookie} if cookie else None,
            user_agent_header=USER_AGENT,
            open_timeout=10,
            close_timeout=2,
            **legacy,
        )


def send(ws, frame: dict) -> None:
    ws.send(json.dumps(frame))


def receive_until(ws, frame_type: str, timeout: float = 10, where=None) -> dict:
    """The next frame of `frame_type` (and matching `where`), skipping the others."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {frame_type!r} frame within {timeout}s")
        try:
            frame = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            raise AssertionError(f"no {frame_type!r} frame within {timeout}s") from None
        if frame.get("type") == frame_type and (where is None or where(frame)):
            return frame


def hello(ws, **fields) -> dict:
    send(ws, {"type": "hello", **fields})
    return receive_until(ws, "welcome")


def _require(what: str, found: bool) -> None:
    if found:
        return
    message = f"{what} is not installed; deploy/cluster needs it"
    if os.environ.get("YOUTHHUB_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (YOUTHHUB_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _database_server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        _require("PostgreSQL (DATABASE_URL of the services backend)", False)
    return url


def _drop_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    maintenance = urllib.parse.urlsplit(server_url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def make_cluster(tmp_path_factory):
    """`make_cluster(workers=2, env=None)`: a running cluster, shared by every test that asks
    for the same one, stopped (and its database dropped) at the end of the session."""
    path = os.environ.get("PATH", "") + _SBIN
    _require("nginx", shutil.which("nginx", path=path) is not None)
    _require("redis-server", shutil.which("redis-server", path=path) is not None)
    server_url = _database_server_url()
    clusters: dict = {}

    def make(workers: int = 2, env: dict | None = None) -> Cluster:
        key = (workers, tuple(sorted((env or {}).items())))
        if key not in clusters:
            name = f"yhcluster_{os.getpid()}_{next(_numbers)}"
            database_url = urllib.parse.urlsplit(server_url)._replace(path=f"/{name}").geturl()
            cluster = Cluster(tmp_path_factory.mktemp("cluster"), workers, database_url, env)
            clusters[key] = (cluster, name)
            try:
                cluster.up()
            except BaseException:
                cluster.down()
                raise
        return clusters[key][0]

    yield make
    for cluster, name in clusters.values():
        cluster.down()
        try:
            _drop_database(server_url, name)
        except Exception as exc:  # a leftover database must not fail the run
            print(f"could not drop {name}: {exc}")


@pytest.fixture(scope="session")
def cluster(request, make_cluster) -> Cluster:
    """A cluster of 2 workers (or `request.param` workers, by indirect parametrisation)."""
    return make_cluster(getattr(request, "param", 2))
