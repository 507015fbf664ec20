"""What the orchestrator measures on the machine: CPU seconds and memory of process groups
(psutil), PostgreSQL's own counters, and py-spy profiles of the workers."""

import collections
import contextlib
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil


def _cpu(proc: psutil.Process, children_reaped: bool = False) -> float:
    times = proc.cpu_times()
    total = times.user + times.system
    if children_reaped:
        total += times.children_user + times.children_system
    return total


def listening_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:port (the PostgreSQL postmaster)."""
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return conn.pid
    return None


class Group:
    """CPU seconds of some processes. `tree`: the process and all its descendants, with the
    CPU of reaped children (PostgreSQL forks a backend per connection) counted in the parent."""

    def __init__(self, pids: list[int], tree: bool = False):
        self.procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                self.procs.append(psutil.Process(pid))
        self.tree = tree

    def cpu(self) -> float:
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                if self.tree:
                    total += _cpu(proc, children_reaped=True)
                    for child in proc.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            total += _cpu(child)
                else:
                    total += _cpu(proc)
        return total

    def rss(self) -> list[int]:
        out = []
        for proc in self.procs:
            try:
                out.append(proc.memory_info().rss)
            except psutil.Error:
                out.append(0)
        return out


def system_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


class Sampler:
    """Snapshots of named groups; `delta(a, b)` gives CPU seconds between two snapshots."""

    def __init__(self, groups: dict[str, Group], database_url: str | None = None):
        self.groups = groups
        self.database_url = database_url

    def snapshot(self) -> dict:
        snap = {
            "at": time.time(),
            "cpu": {name: group.cpu() for name, group in self.groups.items()},
            "system": system_busy(),
        }
        snap["pg"] = pg_counters(self.database_url) if self.database_url else {}
        return snap

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        seconds = b["at"] - a["at"]
        cpu = {name: b["cpu"][name] - a["cpu"][name] for name in a["cpu"]}
        system = b["system"] - a["system"]
        out = {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "cpu_percent": {name: 100 * value / seconds for name, value in cpu.items()},
            "system_busy_percent": 100 * system / seconds,  # of one core; 200 = both full
            "other_percent": 100 * (system - sum(cpu.values())) / seconds,
        }
        if a.get("pg") and b.get("pg"):
            out["pg"] = {name: b["pg"][name] - a["pg"][name] for name in a["pg"]}
        return out


def pg_counters(database_url: str) -> dict:
    """Sessions opened and transactions committed in the bench database so far."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    try:
        with psycopg.connect(database_url, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute(
                "SELECT sessions, xact_commit, tup_inserted, tup_updated FROM pg_stat_database "
                "WHERE datname = %s",
                (name,),
            ).fetchone()
    except Exception:
        return {}
    if row is None:
        return {}
    return dict(zip(("sessions", "xact_commit", "tup_inserted", "tup_updated"), row, strict=True))


# --- py-spy ------------------------------------------------------------------------------


def pyspy_start(pid: int, seconds: float, output: Path) -> subprocess.Popen | None:
    """Sample a worker's Python stacks (100 Hz, without pausing it) for `seconds`."""
    binary = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "py-spy"
    if not binary.exists():
        return None
    return subprocess.Popen(
        [
            str(binary),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")

# Where a stack's time goes, by the first frame (from the leaf up) that falls into one of these.
# A stack that passes through opening or closing a database connection counts as that
# (without the pool, YOUTHHUB_DB_POOL=false, Django opens one per database call).
CONNECTING = {"connect", "ensure_connection", "close_if_unusable_or_obsolete", "close"}
BUCKETS = [
    ("psycopg queries", ("psycopg/",)),
    ("Django ORM / SQL", ("django/db/",)),
    ("channels_redis", ("channels_redis/",)),
    ("redis client", ("redis/",)),
    ("encryption (Fernet / AES-GCM)", ("cryptography/", "youthhub/crypto")),
    ("msgpack / json", ("msgpack", "json/")),
    ("asgiref sync_to_async", ("asgiref/",)),
    ("Twisted / autobahn / daphne", ("twisted/", "autobahn/", "daphne/", "txaio/")),
    ("Django other", ("django/",)),
    ("youthhub code", ("chat/", "dropin/", "youthhub/")),
    ("asyncio", ("asyncio/",)),
]


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for part in stack.split(";"):
        match = _FRAME.match(part.strip())
        out.append((match["func"], match["file"]) if match else (part.strip(), ""))
    return out


def _short(func: str, file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{func} ({file})"


def pyspy_summary(paths: list[Path], top: int = 15) -> dict:
    """Top functions by own time and by total time, and time by bucket, from raw py-spy
    output ("frame;frame;... count" per line, root first)."""
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    buckets: collections.Counter = collections.Counter()
    samples = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            samples += n
            frames = _frames(stack)
            if frames[:1] and frames[0][0].startswith("process "):
                frames = frames[1:]
            frames = [f for f in frames if not f[0].startswith("thread ")]
            if not frames:
                continue
            own[_short(*frames[-1])] += n
            for name in {_short(*f) for f in frames}:
                total[name] += n
            bucket = "other"
            if any(func in CONNECTING and "django/db/backends" in file for func, file in frames):
                bucket = "PostgreSQL connect/close (per database call)"
            for func, file in reversed(frames) if bucket == "other" else ():
                path_text = f"{file}/{func}"
                hit = next(
                    (label for label, keys in BUCKETS if any(k in path_text for k in keys)), None
                )
                if hit:
                    bucket = hit
                    break
            buckets[bucket] += n

    def rows(counter):
        return [
            {"function": name, "samples": n, "percent": round(100 * n / samples, 1)}
            for name, n in counter.most_common(top)
        ]

    # Total time of the project's own functions (and opening database connections): which
    # frame types cost what.
    ours = collections.Counter(
        {
            name: n
            for name, n in total.items()
            if any(f"({d}" in name for d in ("chat/", "dropin/", "youthhub/"))
            and "__main__" not in name
            or name.startswith("BaseDatabaseWrapper.connect ")
        }
    )
    return {
        "samples": samples,
        "own": rows(own),
        "total": rows(total),
        "ours": rows(ours),
        "buckets": rows(buckets),
    }
