"""Real PostgreSQL and Redis for the test suite.

Uses DATABASE_URL / REDIS_URL when set; otherwise starts a private redis-server and a private
PostgreSQL (initdb in a temporary directory) on free loopback ports, and stops them at exit.
With YOUTHHUB_REQUIRE_SERVICES=1 (set by .ci/run) a service that cannot be had is an error,
never a silent skip.
"""

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServiceUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


_owner_pid = os.getpid()
_cleanups: list = []


@atexit.register
def _stop_all() -> None:
    if os.getpid() != _owner_pid:  # a forked child must not stop the parent's servers
        return
    for cleanup in reversed(_cleanups):
        try:
            cleanup()
        except Exception:
            pass


def start_redis() -> str:
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _cleanups.append(lambda: (proc.terminate(), proc.wait(10)))
    _wait_port(port, 10)
    return f"redis://127.0.0.1:{port}/0"


def start_postgres() -> str:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServiceUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    datadir = Path(tempfile.mkdtemp(prefix="youthhub-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: use the postgres system user the package creates.
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("running as root and there is no 'postgres' user") from None
        os.chown(datadir, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *run_as,
            initdb,
            "-D",
            str(datadir / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {datadir} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(datadir / "data"),
            "-o",
            options,
            "-l",
            str(datadir / "log"),
            "-w",
            "-t",
            "30",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def stop():
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(datadir / "data"), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
        shutil.rmtree(datadir, ignore_errors=True)

    _cleanups.append(stop)
    _wait_port(port, 10)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def configure() -> bool:
    """Set DATABASE_URL and REDIS_URL for the services backend. True when both are there."""
    required = os.environ.get("YOUTHHUB_REQUIRE_SERVICES") == "1"
    try:
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = start_redis()
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = start_postgres()
        return True
    except (ServiceUnavailable, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"PostgreSQL/Redis for tests unavailable: {exc} {detail.decode(errors='replace')}"
        if required:
            raise RuntimeError(message + " (YOUTHHUB_REQUIRE_SERVICES=1)") from exc
        print(f"\n*** {message}; using the embedded backend, services tests are skipped ***\n")
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        return False
