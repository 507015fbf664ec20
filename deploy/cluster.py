"""The production layout on loopback: PostgreSQL, Redis, N Daphne workers and nginx in front.

For the fault tests and the load benchmark, and to try a production set-up by hand. Run it as
`deploy/cluster` (a wrapper that picks the project's .venv python):

    deploy/cluster up --workers N [--dir DIR] [--port PORT] [--redis-port RP]
                      [--worker-port P] [--database-url URL] [--env NAME=VALUE ...]
                      [--no-install] [--stop-with PID]
    deploy/cluster down [--dir DIR]
    deploy/cluster status [--dir DIR]              # JSON; exit 0 when every part runs, else 1
    deploy/cluster kill-worker I [--signal KILL] [--dir DIR]
    deploy/cluster start-worker I [--dir DIR]
    deploy/cluster restart-redis [--signal KILL] [--down SECONDS] [--dir DIR]
    deploy/cluster manage [--dir DIR] ARGS ...     # manage.py with the workers' environment

Defaults: DIR var/cluster (in the repository, ignored by git); nginx on 127.0.0.1:8080; worker I
on 127.0.0.1:(8100 + I); a redis-server of its own on 127.0.0.1:6390 (restarting it never
touches another Redis); the database youthhub_cluster on the PostgreSQL at 127.0.0.1:5432
(created if missing; a local PostgreSQL that does not answer is started with pg_ctlcluster).
Missing nginx, redis-server or PostgreSQL packages are installed with apt-get (as root; not
with --no-install).

Everything runs as the current user, each process in its own process group, with its pid (and
start time, against reused pids) in DIR/run/, its output in DIR/logs/, and the marker
YOUTHHUB_CLUSTER_DIR=DIR in its environment, so `down` finds what it started even after a crash.
The workers get production settings (README "Environment variables"): DATABASE_URL, REDIS_URL,
SECRET_KEY and YOUTHHUB_DATA_KEYS (generated once into DIR/secrets/, passed as *_FILE), debug
off, ALLOWED_HOSTS 127.0.0.1 and localhost, static files from nginx, two-factor login on,
YOUTHHUB_HTTPS off (plain http on loopback). nginx runs deploy/nginx/youthhub.conf, rendered
for loopback (see that file's header).

Standard library only: the project's python is needed only for manage.py and Daphne.
"""

import argparse
import base64
import contextlib
import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "youthhub.conf"
ERRORLOG = ROOT / "deploy" / "nginx" / "errorlog.py"

DEFAULT_DIR = ROOT / "var" / "cluster"
DEFAULT_PORT = 8080
DEFAULT_WORKER_PORT = 8101
DEFAULT_REDIS_PORT = 6390
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/youthhub_cluster"
HOST = "127.0.0.1"
MARKER = "YOUTHHUB_CLUSTER_DIR"

START_SECONDS = 60  # longest wait for one process to answer
STOP_SECONDS = 10  # longest wait for one process to exit after SIGTERM (then SIGKILL)
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
# nginx skips a worker that refused a connection for this long (youthhub.conf says 5 s for
# real hosts). On loopback a refused connect costs nothing, so retry soon: a restarted worker
# gets traffic again within a second.
FAIL_TIMEOUT = 1


class ClusterError(Exception):
    pass


def say(text: str) -> None:
    print(text, flush=True)


# --- paths, config, pid files ------------------------------------------------------------


class Layout:
    """Where everything of one cluster lives."""

    def __init__(self, directory: Path):
        self.dir = directory.resolve()
        self.config = self.dir / "cluster.json"
        self.run = self.dir / "run"
        self.logs = self.dir / "logs"
        self.secrets = self.dir / "secrets"
        self.static = self.dir / "static"
        self.data = self.dir / "data"
        self.redis = self.dir / "redis"
        self.nginx_temp = self.dir / "nginx"
        self.nginx_conf = self.dir / "nginx.conf"
        self.site_conf = self.dir / "youthhub.conf"

    def make(self) -> None:
        for path in (self.run, self.logs, self.static, self.data, self.redis, self.nginx_temp):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def errorlog_socket(self) -> Path:
        path = self.run / "nginx-errorlog.sock"
        if len(str(path)) < 100:  # sun_path holds 108 bytes
            return path
        digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"youthhub-cluster-{digest}.sock"

    def read_config(self) -> dict | None:
        try:
            return json.loads(self.config.read_text())
        except FileNotFoundError:
            return None

    def write_config(self, config: dict) -> None:
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        tmp.replace(self.config)


@contextlib.contextmanager
def locked(layout: Layout):
    """One command at a time changes a cluster (a second waits up to two minutes)."""
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.run / "lock", "w") as lock:
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"another deploy/cluster command holds {layout.dir}"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], fields[19]  # state, starttime (fields 3 and 22 of proc(5))


def write_pid(layout: Layout, name: str, pid: int) -> None:
    stat = _proc_stat(pid)
    layout.pidfile(name).write_text(f"{pid} {stat[1] if stat else 0}\n")


def read_pid(layout: Layout, name: str) -> int | None:
    """The pid of `name` if that very process (same start time) is alive, else None."""
    try:
        pid_text, start = layout.pidfile(name).read_text().split()
    except (FileNotFoundError, ValueError):
        return None
    stat = _proc_stat(int(pid_text))
    if stat is None or stat[1] != start or stat[0] in ("Z", "X"):
        return None
    return int(pid_text)


def recorded_pid(layout: Layout, name: str) -> int | None:
    """The pid written for `name`, alive or not (for the status)."""
    try:
        return int(layout.pidfile(name).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def process_state(pid: int | None) -> str | None:
    stat = _proc_stat(pid) if pid else None
    return stat[0] if stat else None


# --- processes ---------------------------------------------------------------------------


def base_env(layout: Layout) -> dict:
    """A clean environment: nothing of the caller's leaks in (DATABASE_URL of a test run ...)."""
    env = {
        name: os.environ[name] for name in ("HOME", "LANG", "LC_ALL", "TZ") if name in os.environ
    }
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":" + SBIN
    env[MARKER] = str(layout.dir)
    return env


def worker_env(layout: Layout, config: dict) -> dict:
    """The production settings of the README for the workers and manage.py."""
    env = base_env(layout)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "youthhub.settings",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DATABASE_URL": config["database_url"],
            "REDIS_URL": f"redis://{HOST}:{config['redis_port']}/0",
            "SECRET_KEY_FILE": str(layout.secrets / "secret_key"),
            "YOUTHHUB_DATA_KEYS_FILE": str(layout.secrets / "data_keys"),
            # Scrape a worker: Authorization: Bearer $(cat DIR/secrets/metrics_token).
            "YOUTHHUB_METRICS_TOKEN_FILE": str(layout.secrets / "metrics_token"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "false",
            "YOUTHHUB_HTTPS": "false",  # plain http on loopback; set it behind TLS
            "YOUTHHUB_SERVE_STATIC": "false",  # nginx serves /static/
            "YOUTHHUB_STATIC_ROOT": str(layout.static),
            "YOUTHHUB_DATA_DIR": str(layout.data),
            # Every worker's counters in one directory, emptied by `up` (youthhub/metrics.py).
            "PROMETHEUS_MULTIPROC_DIR": str(layout.dir / "metrics"),
        }
    )
    env.update(config.get("env", {}))
    return env


def spawn(layout: Layout, name: str, argv: list[str], env: dict) -> subprocess.Popen:
    """Start `argv` in a process group of its own, output to DIR/logs/NAME.log."""
    with open(layout.log(name), "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    write_pid(layout, name, proc.pid)
    return proc


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_until(check, seconds: float, what: str, proc=None, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if proc is not None and proc.poll() is not None:
            raise ClusterError(
                f"{what}: the process exited ({proc.returncode})"
                + (f"; end of {log}:\n{tail(log)}" if log else "")
            )
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{what}: no answer after {seconds:.0f}s"
                + (f"; end of {log}:\n{tail(log)}" if log else "")
            )
        time.sleep(0.1)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def stop(layout: Layout, names: list[str], sig: int = signal.SIGTERM) -> list[str]:
    """Signal the process groups of `names`, wait for them (SIGKILL after STOP_SECONDS)."""
    pids = {name: read_pid(layout, name) for name in names}
    pids = {name: pid for name, pid in pids.items() if pid and pid != os.getpid()}
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    deadline = time.monotonic() + STOP_SECONDS
    while any(read_pid(layout, name) for name in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name, pid in pids.items():
        if read_pid(layout, name):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_SECONDS
    while any(read_pid(layout, name) for name in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(pids)


def marked_processes(layout: Layout) -> list[int]:
    """Processes started by this cluster, whatever the pid files say: what is left after a
    crash of deploy/cluster or a lost pid file. Known by the marker in their environment, or,
    for nginx and redis-server (which write their process titles over it), by nginx's
    `-p DIR -c` and by redis-server's working directory DIR/redis."""
    needle = f"{MARKER}={layout.dir}\0".encode()
    nginx_title = f" -p {layout.dir} -c ".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
            elif nginx_title in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                found.append(int(entry.name))
            elif Path(os.readlink(entry / "cwd")) == layout.redis:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group that `pid` leads (each part starts one), else `pid` alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


# --- the parts ---------------------------------------------------------------------------

_apt_updated = False


def apt_install(packages: list[str], allowed: bool) -> None:
    global _apt_updated
    if not allowed:
        raise ClusterError(f"missing: {' '.join(packages)} (apt-get install {' '.join(packages)})")
    if os.geteuid() != 0:
        raise ClusterError(
            f"missing: {' '.join(packages)}; as root: apt-get install {' '.join(packages)}"
        )
    say(f"  installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        _apt_updated = True
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":" + SBIN)


def need_binary(name: str, package: str, install: bool) -> str:
    found = which(name)
    if not found:
        apt_install([package], install)
        found = which(name)
    if not found:
        raise ClusterError(f"{name} is still missing after installing {package}")
    return found


def ensure_secrets(layout: Layout) -> None:
    """SECRET_KEY, YOUTHHUB_DATA_KEYS and the metrics token, generated once per DIR (0600)."""
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    for name, value in (
        ("secret_key", secrets.token_urlsafe(50)),
        ("data_keys", f"k1:{key}"),
        ("metrics_token", secrets.token_urlsafe(24)),
    ):
        path = layout.secrets / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value + "\n")


def ensure_postgres(config: dict, install: bool) -> None:
    """A PostgreSQL answering at the URL's host and port; a local one is started if need be."""
    url = urlparse(config["database_url"])
    host, port = url.hostname or HOST, url.port or 5432
    if port_open(port, host):
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ClusterError(f"no PostgreSQL answers at {host}:{port}")
    if not which("pg_ctlcluster") or not list(Path("/etc/postgresql").glob("*/main")):
        apt_install(["postgresql"], install)
    versions = sorted((p.parent.name for p in Path("/etc/postgresql").glob("*/main")), reverse=True)
    if not versions:
        raise ClusterError(
            f"no PostgreSQL answers at {host}:{port} and there is no cluster in /etc/postgresql "
            "(pg_createcluster, or pass --database-url)"
        )
    for version in versions:
        say(f"  starting PostgreSQL {version}/main (pg_ctlcluster)")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        with contextlib.suppress(ClusterError):
            wait_until(lambda: port_open(port, host), 30, "PostgreSQL")
            return
    raise ClusterError(
        f"no PostgreSQL answers at {host}:{port}, and `pg_ctlcluster --skip-systemctl-redirect "
        f"{' '.join(versions)} main start` did not bring one up there"
    )


_CREATE_DATABASE = """
import sys
import psycopg
from psycopg import errors, sql
url, name = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print("created")
        except errors.DuplicateDatabase:
            pass
"""


def ensure_database(config: dict) -> None:
    url = urlparse(config["database_url"])
    name = url.path.lstrip("/")
    if not name:
        raise ClusterError("the database URL names no database")
    maintenance = urlunparse(url._replace(path="/postgres"))
    done = subprocess.run(
        [PYTHON, "-c", _CREATE_DATABASE, maintenance, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise ClusterError(f"cannot create database {name}: {done.stderr.strip()}")
    if "created" in done.stdout:
        say(f"  created database {name}")


def check_port_free(port: int, what: str) -> None:
    if port_open(port):
        raise ClusterError(
            f"{HOST}:{port} ({what}) is in use by something else: another cluster "
            "(deploy/cluster down --dir ...) or pick other ports"
        )


def start_redis(layout: Layout, config: dict) -> None:
    binary = need_binary("redis-server", "redis-server", config.get("install", True))
    port = config["redis_port"]
    check_port_free(port, "redis")
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(layout.redis), "--daemonize", "no", "--loglevel", "notice"]
    argv += ["--protected-mode", "yes"]
    proc = spawn(layout, "redis", argv, base_env(layout))
    wait_until(lambda: port_open(port), START_SECONDS, "redis", proc, layout.log("redis"))


def manage(layout: Layout, config: dict, *args: str) -> subprocess.Popen:
    name = args[0]
    log = open(layout.log(name), "ab")  # closed by finish()
    proc = subprocess.Popen(
        [PYTHON, str(ROOT / "manage.py"), *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=worker_env(layout, config),
        cwd=ROOT,
    )
    proc.log_file = log  # type: ignore[attr-defined]
    return proc


def finish(layout: Layout, proc: subprocess.Popen, name: str, seconds: float = 600) -> None:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise ClusterError(f"manage.py {name} took over {seconds:.0f}s") from None
    finally:
        proc.log_file.close()  # type: ignore[attr-defined]
    if proc.returncode != 0:
        raise ClusterError(
            f"manage.py {name} failed; end of {layout.log(name)}:\n{tail(layout.log(name))}"
        )


def worker_name(index: int) -> str:
    return f"worker-{index}"


def worker_port(config: dict, index: int) -> int:
    return config["worker_port"] + index - 1


def start_worker(layout: Layout, config: dict, index: int) -> subprocess.Popen:
    port = worker_port(config, index)
    check_port_free(port, worker_name(index))
    argv = [PYTHON, "-m", "youthhub", "serve", "--bind", HOST, "--port", str(port)]
    return spawn(layout, worker_name(index), argv, worker_env(layout, config))


def wait_worker(layout: Layout, config: dict, index: int, proc=None) -> None:
    port = worker_port(config, index)
    wait_until(
        lambda: port_open(port) and http_ok(f"http://{HOST}:{port}/staff/login/"),
        START_SECONDS,
        worker_name(index),
        proc,
        layout.log(worker_name(index)),
    )


def render_site(template: str, values: dict[str, str]) -> str:
    """The loopback variant of deploy/nginx/youthhub.conf (rules in that file's header)."""
    out: list[str] = []
    dropping = False
    for line in template.splitlines():
        stripped = line.strip()
        if stripped == "# cluster: drop-begin":
            dropping = True
            continue
        if stripped == "# cluster: drop-end":
            dropping = False
            continue
        if dropping:
            continue
        match = re.search(r"\s#\s?cluster:\s*(.+?)\s*$", line)
        if match and not stripped.startswith("#"):
            replacement = match.group(1)
            if replacement == "drop":
                continue
            for key, value in values.items():
                replacement = replacement.replace("{" + key + "}", value)
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + part for part in replacement.split("\n"))
            continue
        out.append(line)
    text = "\n".join(out) + "\n"
    left = re.findall(r"\{[a-z_]+\}", text)
    if left:
        raise ClusterError(f"unknown placeholders in {NGINX_TEMPLATE}: {', '.join(left)}")
    if dropping:
        raise ClusterError(f"{NGINX_TEMPLATE}: 'cluster: drop-begin' without drop-end")
    return text


MAIN_CONF = """\
# Generated by deploy/cluster for a loopback cluster; rewritten by every `up`.
{user}worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid {dir}/nginx/nginx.pid;
error_log syslog:server=unix:{socket},nohostname,tag=nginx warn;

events {{
    worker_connections 8192;
}}

http {{
    {mime}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    access_log off;
    client_body_temp_path {dir}/nginx/client_body;
    proxy_temp_path {dir}/nginx/proxy;
    fastcgi_temp_path {dir}/nginx/fastcgi;
    uwsgi_temp_path {dir}/nginx/uwsgi;
    scgi_temp_path {dir}/nginx/scgi;

    include {dir}/youthhub.conf;
}}
"""

MIME_FALLBACK = """types {
        text/html html; text/css css; application/javascript js mjs; application/json json;
        image/svg+xml svg; image/png png; image/x-icon ico; font/woff2 woff2;
        application/manifest+json webmanifest;
    }"""


def write_nginx_conf(layout: Layout, config: dict) -> None:
    workers = "\n".join(
        f"server {HOST}:{worker_port(config, i)} max_fails=1 fail_timeout={FAIL_TIMEOUT}s;"
        for i in range(1, config["workers"] + 1)
    )
    backups = "\n".join(
        f"server {HOST}:{worker_port(config, i)} backup max_fails=0;"
        for i in range(1, config["workers"] + 1)
    )
    site = render_site(
        NGINX_TEMPLATE.read_text(),
        {
            "workers": workers,
            "backups": backups,
            "listen": f"{HOST}:{config['port']}",
            "server_name": "127.0.0.1 localhost",
            "access_log": str(layout.log("nginx-access")),
            "errorlog_socket": str(layout.errorlog_socket),
            "static_root": str(layout.static),
        },
    )
    layout.site_conf.write_text(site)
    user = ""
    if os.geteuid() == 0:
        # Only root's nginx switches its workers to another user: keep them the current user,
        # who can read DIR (a private temporary directory in the tests).
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    mime = "/etc/nginx/mime.types"
    layout.nginx_conf.write_text(
        MAIN_CONF.format(
            user=user,
            dir=layout.dir,
            socket=layout.errorlog_socket,
            mime=f"include {mime};" if os.path.exists(mime) else MIME_FALLBACK,
        )
    )


def nginx_argv(layout: Layout, binary: str) -> list[str]:
    # -e: nginx's own start-up messages (before it reads the config) go to DIR, not /var/log.
    return [
        binary,
        "-p",
        str(layout.dir),
        "-c",
        str(layout.nginx_conf),
        "-e",
        str(layout.log("nginx")),
    ]


def start_nginx(layout: Layout, config: dict) -> None:
    binary = need_binary("nginx", "nginx-light", config.get("install", True))
    check_port_free(config["port"], "nginx")
    write_nginx_conf(layout, config)
    test = subprocess.run(
        [*nginx_argv(layout, binary), "-t", "-q"], capture_output=True, text=True, timeout=30
    )
    if test.returncode != 0:
        raise ClusterError(f"nginx -t refuses {layout.nginx_conf}:\n{test.stderr.strip()}")
    proc = spawn(layout, "nginx", nginx_argv(layout, binary), base_env(layout))
    url = f"http://{HOST}:{config['port']}/staff/login/"
    wait_until(
        lambda: port_open(config["port"]) and http_ok(url),
        START_SECONDS,
        "nginx",
        proc,
        layout.log("nginx"),
    )


def start_errorlog(layout: Layout) -> None:
    sock = layout.errorlog_socket
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    argv = [PYTHON, str(ERRORLOG), str(sock), "--output", str(layout.log("nginx-error"))]
    proc = spawn(layout, "errorlog", argv, base_env(layout))
    wait_until(sock.exists, START_SECONDS, "nginx error log receiver", proc, layout.log("errorlog"))


# --- commands ----------------------------------------------------------------------------


def part_names(config: dict) -> list[str]:
    """Every process of a cluster, in the order `down` stops them."""
    workers = [worker_name(i) for i in range(1, config["workers"] + 1)]
    return ["nginx", *workers, "redis", "errorlog", "watchdog"]


def status_of(layout: Layout) -> dict:
    config = layout.read_config()
    if config is None:
        return {"dir": str(layout.dir), "up": False, "configured": False}

    def part(name: str, port: int | None = None) -> dict:
        pid = read_pid(layout, name)
        info: dict = {"pid": pid or recorded_pid(layout, name), "running": pid is not None}
        if pid:
            info["state"] = process_state(pid)
        if port is not None:
            info["port"] = port
        info["log"] = str(layout.log(name))
        return info

    nginx_url = f"http://{HOST}:{config['port']}"
    workers = []
    for index in range(1, config["workers"] + 1):
        port = worker_port(config, index)
        workers.append(
            {"index": index, **part(worker_name(index), port), "url": f"http://{HOST}:{port}"}
        )
    status = {
        "dir": str(layout.dir),
        "configured": True,
        "url": nginx_url,
        "nginx": {"url": nginx_url, **part("nginx", config["port"])},
        "nginx_access_log": str(layout.log("nginx-access")),
        "nginx_error_log": str(layout.log("nginx-error")),
        "workers": workers,
        "redis": {
            "url": f"redis://{HOST}:{config['redis_port']}/0",
            **part("redis", config["redis_port"]),
        },
        "errorlog": part("errorlog"),
        "stop_with": config.get("stop_with"),
        "database_url": config["database_url"],
        "metrics_token_file": str(layout.secrets / "metrics_token"),
        "static_root": str(layout.static),
        "logs": str(layout.logs),
        "env": config.get("env", {}),
    }
    parts = [status["nginx"], status["redis"], status["errorlog"], *workers]
    status["up"] = all(p["running"] for p in parts)
    return status


def cmd_status(layout: Layout, args) -> int:
    status = status_of(layout)
    print(json.dumps(status, indent=2))
    return 0 if status["up"] else 1


def down(layout: Layout, config: dict | None) -> list[str]:
    stopped = []
    if config is not None:
        stopped = stop(layout, part_names(config))
    leftovers = marked_processes(layout)
    for pid in leftovers:
        kill_group(pid)
    if leftovers:
        stopped.append(f"{len(leftovers)} left over")
    for pidfile in layout.run.glob("*.pid"):
        pidfile.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        layout.errorlog_socket.unlink()
    return stopped


def cmd_down(layout: Layout, args) -> int:
    if not layout.dir.exists():
        say(f"no cluster in {layout.dir}")
        return 0
    with locked(layout):
        stopped = down(layout, layout.read_config())
    say(f"cluster down ({', '.join(stopped) if stopped else 'nothing was running'})")
    return 0


def new_config(layout: Layout, args) -> dict:
    env = {}
    for item in args.env or []:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ClusterError(f"--env wants NAME=VALUE, not {item!r}")
        env[name] = value
    if args.workers < 1:
        raise ClusterError("--workers must be at least 1")
    return {
        "dir": str(layout.dir),
        "workers": args.workers,
        "port": args.port,
        "worker_port": args.worker_port,
        "redis_port": args.redis_port,
        "database_url": args.database_url,
        "env": env,
        "install": not args.no_install,
        "stop_with": args.stop_with,
    }


def cmd_up(layout: Layout, args) -> int:
    started = time.monotonic()
    layout.make()
    with locked(layout):
        config = new_config(layout, args)
        old = layout.read_config()
        if old is not None:
            status = status_of(layout)
            same = {k: v for k, v in old.items() if k != "install"} == {
                k: v for k, v in config.items() if k != "install"
            }
            if status["up"] and same:
                say(f"cluster already up: {status['url']}/ ({layout.dir})")
                return 0
            if any(p["running"] for p in [status["nginx"], status["redis"], *status["workers"]]):
                say("cluster partly up or with other settings: restarting it")
            down(layout, old)
        else:
            down(layout, None)  # processes of an earlier run whose config went missing
        layout.write_config(config)

        def step(text: str) -> None:
            say(f"  {time.monotonic() - started:5.1f}s  {text}")

        try:
            for index in range(1, config["workers"] + 1):
                check_port_free(worker_port(config, index), worker_name(index))
            check_port_free(config["port"], "nginx")
            check_port_free(config["redis_port"], "redis")
            need_binary("nginx", "nginx-light", config["install"])
            ensure_secrets(layout)
            ensure_postgres(config, config["install"])
            ensure_database(config)
            step(f"PostgreSQL: {config['database_url']}")
            start_redis(layout, config)
            step(f"redis: port {config['redis_port']}")
            migrate = manage(layout, config, "migrate", "--noinput")
            collect = manage(layout, config, "collectstatic", "--noinput")
            finish(layout, collect, "collectstatic")
            finish(layout, migrate, "migrate")
            step("migrate, collectstatic")
            start_errorlog(layout)
            shutil.rmtree(layout.dir / "metrics", ignore_errors=True)
            (layout.dir / "metrics").mkdir()
            procs = {i: start_worker(layout, config, i) for i in range(1, config["workers"] + 1)}
            for index, proc in procs.items():
                wait_worker(layout, config, index, proc)
            step(f"{config['workers']} workers from port {config['worker_port']}")
            start_nginx(layout, config)
            step(f"nginx: port {config['port']}")
            if config["stop_with"]:
                start_watchdog(layout, config["stop_with"])
        except BaseException:
            down(layout, config)
            raise
    first, last = config["worker_port"], worker_port(config, config["workers"])
    say(f"cluster up in {time.monotonic() - started:.1f}s ({layout.dir})")
    say(f"  nginx     http://{HOST}:{config['port']}/")
    say(f"  workers   {config['workers']} on {HOST}:{first}-{last}")
    say(f"  redis     redis://{HOST}:{config['redis_port']}/0")
    say(f"  database  {config['database_url']}")
    say(f"  logs      {layout.logs}/")
    return 0


def loaded(layout: Layout) -> dict:
    config = layout.read_config()
    if config is None:
        raise ClusterError(f"no cluster in {layout.dir} (deploy/cluster up --workers N)")
    return config


def checked_index(config: dict, index: int) -> int:
    if not 1 <= index <= config["workers"]:
        raise ClusterError(f"worker {index}: this cluster has workers 1 to {config['workers']}")
    return index


def parse_signal(text: str) -> signal.Signals:
    name = text.upper()
    try:
        return (
            signal.Signals(int(name))
            if name.isdigit()
            else signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        )
    except (KeyError, ValueError):
        raise ClusterError(f"unknown signal {text!r}") from None


STOPPING = {signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}


def signal_part(layout: Layout, name: str, sig: signal.Signals) -> dict:
    pid = read_pid(layout, name)
    if pid is None:
        return {"name": name, "pid": recorded_pid(layout, name), "running": False, "signal": None}
    os.killpg(pid, sig)
    if sig in STOPPING:
        deadline = time.monotonic() + STOP_SECONDS
        while read_pid(layout, name) and time.monotonic() < deadline:
            time.sleep(0.02)
    alive = read_pid(layout, name) is not None
    return {
        "name": name,
        "pid": pid,
        "signal": sig.name,
        "running": alive,
        "state": process_state(pid) if alive else None,
    }


def cmd_kill_worker(layout: Layout, args) -> int:
    with locked(layout):
        config = loaded(layout)
        index = checked_index(config, args.index)
        result = signal_part(layout, worker_name(index), parse_signal(args.signal))
    print(json.dumps({"worker": index, "port": worker_port(config, index), **result}))
    return 0


def cmd_start_worker(layout: Layout, args) -> int:
    with locked(layout):
        config = loaded(layout)
        index = checked_index(config, args.index)
        name = worker_name(index)
        pid = read_pid(layout, name)
        if pid is not None:
            state = process_state(pid)
            if state == "T":  # stopped by kill-worker --signal STOP: let it go on
                os.killpg(pid, signal.SIGCONT)
                say(f"{name} (pid {pid}) was stopped: continued")
            else:
                say(f"{name} already runs (pid {pid})")
        else:
            started = time.monotonic()
            proc = start_worker(layout, config, index)
            wait_worker(layout, config, index, proc)
            # nginx may still skip it for FAIL_TIMEOUT after its last refused connect: once
            # this returns, the next connection nginx hands out may go to this worker.
            time.sleep(FAIL_TIMEOUT)
            pid = proc.pid
            say(
                f"{name} started (pid {pid}, port {worker_port(config, index)}) in {time.monotonic() - started:.1f}s"
            )
    return 0


def cmd_restart_redis(layout: Layout, args) -> int:
    with locked(layout):
        config = loaded(layout)
        started = time.monotonic()
        old = read_pid(layout, "redis")
        if old is not None:
            result = signal_part(layout, "redis", parse_signal(args.signal))
            if result["running"]:
                stop(layout, ["redis"], signal.SIGKILL)
        if args.down:
            time.sleep(args.down)
        start_redis(layout, config)
        pid = read_pid(layout, "redis")
    print(
        json.dumps(
            {
                "redis": {"old_pid": old, "pid": pid, "port": config["redis_port"]},
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )
    return 0


def cmd_manage(layout: Layout, args) -> int:
    config = loaded(layout)
    argv = list(args.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *argv], env=worker_env(layout, config), cwd=ROOT
    ).returncode


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="deploy/cluster",
        description="The production layout (PostgreSQL, Redis, N Daphne workers, nginx) on loopback.",
    )
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
        return sub

    up = command("up", "start the cluster (or say it is up; restart it with other settings)")
    up.add_argument("--workers", type=int, required=True, help="number of Daphne workers")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="nginx (default %(default)s)")
    up.add_argument(
        "--redis-port",
        type=int,
        default=DEFAULT_REDIS_PORT,
        help="its own redis-server (default %(default)s)",
    )
    up.add_argument(
        "--worker-port",
        type=int,
        default=DEFAULT_WORKER_PORT,
        help="worker 1; worker I on this + I - 1 (default %(default)s)",
    )
    up.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="default %(default)s")
    up.add_argument(
        "--env", action="append", metavar="NAME=VALUE", help="extra setting for the workers"
    )
    up.add_argument("--no-install", action="store_true", help="never apt-get install")
    up.add_argument(
        "--stop-with",
        type=int,
        metavar="PID",
        help="go down by itself when process PID ends (a test run that dies leaves nothing)",
    )
    command("down", "stop everything the cluster started")
    command("status", "JSON: nginx url, workers, redis, database; exit 1 unless every part runs")
    kill = command("kill-worker", "send a worker's process group a signal (TERM by default)")
    kill.add_argument("index", type=int, help="worker number, from 1")
    kill.add_argument("--signal", default="TERM", help="TERM, KILL, STOP ... (default TERM)")
    start = command(
        "start-worker", "start a worker that is not running (or continue a stopped one)"
    )
    start.add_argument("index", type=int)
    redis = command("restart-redis", "stop the cluster's redis-server and start it again")
    redis.add_argument("--signal", default="TERM", help="how to stop it (default TERM)")
    redis.add_argument(
        "--down", type=float, default=0, metavar="SECONDS", help="stay down this long"
    )
    run = command("manage", "run manage.py with the workers' environment")
    run.add_argument("args", nargs=argparse.REMAINDER)
    return top


def watch(layout: Layout, pid: int) -> None:
    """The watchdog (`up --stop-with PID`): take the cluster down when PID is gone."""
    while alive(pid):
        time.sleep(1)
    with locked(layout):
        down(layout, layout.read_config())


def start_watchdog(layout: Layout, pid: int) -> None:
    if not alive(pid):
        raise ClusterError(f"--stop-with {pid}: no such process")
    argv = [PYTHON, str(Path(__file__).resolve()), "_watch", str(pid), "--dir", str(layout.dir)]
    spawn(layout, "watchdog", argv, base_env(layout))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_watch"]:  # internal: the watchdog process
        watch(Layout(Path(argv[3])), int(argv[1]))
        return 0
    args = parser().parse_args(argv)
    layout = Layout(args.dir)
    handlers = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "kill-worker": cmd_kill_worker,
        "start-worker": cmd_start_worker,
        "restart-redis": cmd_restart_redis,
        "manage": cmd_manage,
    }
    try:
        return handlers[args.command](layout, args)
    except ClusterError as exc:
        print(f"deploy/cluster {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"deploy/cluster {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
