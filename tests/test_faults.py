"""Faults under a live chat (issue 7 item 8): two Daphne workers behind nginx on loopback
(deploy/cluster), PostgreSQL and Redis, and clients that behave like the real pages
(tests/faultclient.py). A youth and a staff member write to each other continuously while
a second youth waits in the queue; then

- (a) the worker the youth is connected to is killed (SIGKILL);
- (b) the cluster's Redis restarts (SIGTERM at once, and SIGKILL with 2 s down);
- (c) the clients' TCP connections are cut without a close frame (the two youths first, then
  the staff member), each offline for 2 s while the other side keeps writing.

After each: every acknowledged message reaches both sides exactly once, in seq order, and the
database (a fresh socket's `sync`) holds each acknowledged client_id once; each page's view
equals it; the waiting youth keeps its place; the staff member's queue equals a fresh
socket's. The conversation also goes quiet after the fault for a while: what was sent during
the fault must arrive without any further message to carry it (a lost publish only shows
then). Figures per scenario are printed and written to test-artifacts/faults.json
(docs/faults.md reports them).
"""

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests import cluster as fixtures
from tests.cluster import ROOT, USER_AGENT
from tests.faultclient import ChatClient, figures

make_cluster = fixtures.make_cluster

RATE = 8  # messages a second, each side
BEFORE = 2.0  # seconds of chat before the fault
AFTER = 2.0  # ... after it (worker kill and dropped connections)
RESUME = 1.5  # ... after the quiet check, to see live delivery go on
QUIET = 10.0  # at most this long for everything to arrive with nobody writing
DRAIN = 20.0  # at most this long for the outboxes to empty
# Faster than a person, so the chat's own limits are raised: 8 messages a second per side.
ENV = {
    "YOUTHHUB_MESSAGES_PER_MINUTE": "100000",
    "YOUTHHUB_FRAMES_PER_SECOND": "50",
    "YOUTHHUB_FRAME_BURST": "200",
}
REPORT = ROOT / "test-artifacts" / "faults.json"
STAFF = "ingrid"


@pytest.fixture(scope="module")
def faults_cluster(make_cluster):
    return make_cluster(2, ENV | {"YOUTHHUB_CHANNEL_LAYER": "pubsub"})


async def until(condition, timeout: float, what: str) -> float:
    """Wait for `condition()`; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def open_socket(cluster, path: str, cookie: str | None = None):
    return await connect(
        cluster.ws_url + path,
        origin=cluster.url,
        additional_headers={"Cookie": cookie} if cookie else None,
        user_agent_header=USER_AGENT,
        open_timeout=10,
        close_timeout=1,
    )


async def next_frame(ws, kind: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


async def retried(attempt, what: str, tries: int = 20):
    """A helper socket reconnects like a page: the server may close it (4012: the channel
    layer just came back) or refuse it while Redis is away."""
    for _ in range(tries - 1):
        try:
            return await attempt()
        except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError):
            await asyncio.sleep(0.5)
    return await attempt()


async def record(cluster, token: str, conversation_id: str) -> list[dict]:
    """The database's record of the conversation: a fresh youth socket pages through `sync`."""

    async def attempt():
        async with await open_socket(cluster, "/ws/youth/") as ws:
            hello = {"type": "hello", "token": token, "conversation_id": conversation_id}
            await ws.send(json.dumps(hello | {"last_seq": 2**31 - 1}))  # replay nothing
            await next_frame(ws, "welcome")
            messages: list[dict] = []
            while True:
                after = messages[-1]["seq"] if messages else 0
                await ws.send(json.dumps({"type": "sync", "after_seq": after}))
                page = await next_frame(ws, "history")
                messages += page["messages"]
                if page["complete"]:
                    return messages

    return await retried(attempt, "the record")


async def fresh_staff_queue(cluster, cookie: str) -> list[dict]:
    async def attempt():
        async with await open_socket(cluster, "/ws/staff/", cookie) as ws:
            await ws.send(json.dumps({"type": "hello"}))
            return (await next_frame(ws, "welcome"))["queue"]

    return await retried(attempt, "a fresh staff socket")


def queue_row(queue: list[dict] | None, conversation_id: str) -> dict | None:
    for row in queue or []:
        if row["conversation_id"] == conversation_id:
            keep = ("conversation_id", "position", "waiting_since", "target", "ticket", "crisis")
            return {key: row.get(key) for key in keep}
    return None


def place(queued: dict | None) -> dict | None:
    if queued is None:
        return None
    return {key: queued.get(key) for key in ("conversation_id", "position", "ticket", "target")}


class Chat:
    """A staff member and a youth chatting, a second youth waiting in the queue."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.cookie = cluster.staff_cookie(STAFF)
        self.workers: dict[str, int] = {}

    def client(self, name: str, side: str, **kwargs) -> ChatClient:
        path = "/ws/staff/" if side == "staff" else "/ws/youth/"
        return ChatClient(
            name,
            side,
            self.cluster.ws_url + path,
            origin=self.cluster.url,
            user_agent=USER_AGENT,
            **kwargs,
        )

    async def open(self, name: str, client: ChatClient) -> ChatClient:
        """Start a client and note which worker took its socket."""
        before = self.cluster.ws_connects()
        client.start()
        await client.wait_online()
        await until(lambda: self.cluster.ws_connects() != before, 5, f"{name}'s socket logged")
        after = self.cluster.ws_connects()
        self.workers[name] = next(i for i in after if after[i] > before[i])
        return client

    async def setup(self) -> None:
        tokens = await asyncio.gather(
            asyncio.to_thread(self.cluster.youth_token),
            asyncio.to_thread(self.cluster.youth_token),
        )
        self.staff = await self.open("staff", self.client("staff", "staff", cookie=self.cookie))
        self.youth = await self.open("youth", self.client("youth", "youth", token=tokens[0]))
        await self.youth.send({"type": "request", "target": "any"})
        await until(lambda: self.youth.queued is not None, 10, "the youth queued")
        self.conversation_id = self.youth.conversation_id
        await until(
            lambda: queue_row(self.staff.queue, self.conversation_id), 10, "staff sees the youth"
        )
        self.staff.conversation_id = self.conversation_id
        await self.staff.send({"type": "accept", "conversation_id": self.conversation_id})
        await until(
            lambda: any(f["type"] == "assigned" for f in self.youth.states), 10, "the chat starts"
        )
        self.waiting = await self.open("waiting", self.client("waiting", "youth", token=tokens[1]))
        await self.waiting.send({"type": "request", "target": "any"})
        await until(lambda: self.waiting.queued is not None, 10, "the second youth queued")
        self.waiting_id = self.waiting.conversation_id
        await until(
            lambda: queue_row(self.staff.queue, self.waiting_id), 10, "staff sees the second youth"
        )
        self.place_before = place(self.waiting.queued)
        self.row_before = queue_row(self.staff.queue, self.waiting_id)

    async def talk(self, seconds: float) -> None:
        stop = asyncio.Event()
        talkers = [asyncio.create_task(c.talk(RATE, stop)) for c in (self.youth, self.staff)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*talkers)

    def sides(self):
        return (("youth", self.youth, "staff"), ("staff", self.staff, "youth"))

    async def settle(self, timeout: float) -> dict:
        """With nobody writing: how long until each side shows the whole record (or what is
        still missing when the time is up)."""
        started = time.monotonic()
        truth = await record(self.cluster, self.youth.token, self.conversation_id)
        latest = truth[-1]["seq"] if truth else 0
        result = {}
        for side, client, _ in self.sides():
            left = max(timeout - (time.monotonic() - started), 0.1)
            try:
                await until(lambda c=client: c.latest >= latest, left, side)
                took = round(time.monotonic() - started, 2)
                result[side] = {"missing": 0, "seconds": took}
            except AssertionError:
                missing = [m["seq"] for m in truth if m["seq"] not in client.seen]
                result[side] = {"missing": len(missing), "seconds": None, "seqs": missing[:10]}
        return result

    async def finish(self, fault_at: float) -> dict:
        drained = {}
        for side, client, _ in self.sides():
            try:
                await until(lambda c=client: c.ready and not c.outbox, DRAIN, side)
                drained[side] = True
            except AssertionError:
                drained[side] = False  # counted as unacknowledged below
        await until(lambda: self.waiting.ready, DRAIN, "the second youth online")
        truth = await record(self.cluster, self.youth.token, self.conversation_id)
        latest = truth[-1]["seq"] if truth else 0
        for side, client, _ in self.sides():
            try:
                await until(lambda c=client: c.latest >= latest, 10, f"{side} caught up")
            except AssertionError:
                pass  # counted as lost below
        await until(lambda: self.waiting.queued is not None, 10, "the second youth's place")
        staff_queue = await fresh_staff_queue(self.cluster, self.cookie)
        try:  # a queue.update may still be on its way
            await until(lambda: self.staff.queue == staff_queue, 5, "the staff page's queue")
        except AssertionError:
            pass  # reported below
        return {
            "drained": drained,
            "messages": len(truth),
            "seqs_contiguous": [m["seq"] for m in truth] == list(range(1, len(truth) + 1)),
            "workers": dict(self.workers),
            "sides": {
                "youth": figures(self.youth, self.staff, truth, fault_at),
                "staff": figures(self.staff, self.youth, truth, fault_at),
            },
            "views_equal_record": {
                side: {s: (f["sender"], f["client_id"]) for s, f in client.seen.items()}
                == {m["seq"]: (m["sender"], m["client_id"]) for m in truth}
                for side, client, _ in self.sides()
            },
            "queue": {
                "place_before": self.place_before,
                "place_after": place(self.waiting.queued),
                "staff_row_before": self.row_before,
                "staff_row_after": queue_row(self.staff.queue, self.waiting_id),
                "staff_view_equals_fresh_socket": self.staff.queue == staff_queue,
                "waiting_reconnects": len(self.waiting.connects) - 1,
                "waiting_welcome": {
                    key: (self.waiting.welcome.get("conversation") or {}).get(key)
                    for key in ("id", "state")
                },
            },
        }

    async def close(self) -> None:
        await self.staff.send({"type": "end", "conversation_id": self.conversation_id})
        await self.waiting.send({"type": "end"})
        await asyncio.sleep(0.3)
        for client in (self.youth, self.staff, self.waiting):
            await client.stop()


async def run_scenario(cluster, name: str, fault, *, after: float) -> dict:
    chat = Chat(cluster)
    await chat.setup()
    started = time.monotonic()
    stop = asyncio.Event()
    talkers = [asyncio.create_task(c.talk(RATE, stop)) for c in (chat.youth, chat.staff)]
    await asyncio.sleep(BEFORE)
    fault_at = time.monotonic()
    details = await fault(chat)
    fault_seconds = time.monotonic() - fault_at
    await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*talkers)
    quiet = await chat.settle(QUIET)
    await chat.talk(RESUME)
    result = await chat.finish(fault_at)
    await chat.close()
    result |= {
        "scenario": name,
        "fault": details,
        "fault_seconds": round(fault_seconds, 2),
        "quiet_after_fault": quiet,
        "seconds": round(time.monotonic() - started, 1),
    }
    _report(name, result)
    return result


def _report(name: str, result: dict) -> None:
    print(f"\n{name}: {json.dumps(result, indent=1)}")
    REPORT.parent.mkdir(exist_ok=True)
    try:
        everything = json.loads(REPORT.read_text())
    except (FileNotFoundError, ValueError):
        everything = {}
    everything[name] = result
    REPORT.write_text(json.dumps(everything, indent=1) + "\n")


def check(result: dict) -> None:
    """Every acknowledged message once to each side, in order, as the database has it; the
    queue intact. All problems at once, so a failure shows the whole picture."""
    problems = []
    if not result["seqs_contiguous"]:
        problems.append("the record's seqs are not 1..N")
    for side, got in result["sides"].items():
        for key in (
            "lost",
            "duplicated",
            "wrong",
            "out_of_order",
            "unacknowledged",
            "acknowledged_not_stored",
            "acknowledged_stored_twice",
            "acknowledged_wrong_seq",
        ):
            if got[key]:
                problems.append(f"{side}: {key} = {got[key]}")
        if got["refused"]:
            problems.append(f"{side}: messages refused {got['refused']}")
        if not got["in_order"]:
            problems.append(f"{side}: not in seq order")
        if not result["views_equal_record"][side]:
            problems.append(f"{side}: the page's view differs from the record")
        if result["quiet_after_fault"][side]["missing"]:
            problems.append(
                f"{side}: {result['quiet_after_fault'][side]['missing']} messages had not "
                f"arrived {QUIET}s after the fault with nobody writing"
            )
    queue = result["queue"]
    if queue["place_after"] != queue["place_before"]:
        problems.append(f"the waiting youth's place changed: {queue}")
    if queue["staff_row_after"] != queue["staff_row_before"]:
        problems.append(f"the staff page shows the waiting youth differently: {queue}")
    if queue["waiting_welcome"] != {
        "id": queue["place_before"]["conversation_id"],
        "state": "queued",
    }:
        problems.append(f"the waiting youth's welcome lost the request: {queue}")
    if not queue["staff_view_equals_fresh_socket"]:
        problems.append("the staff page's queue differs from a fresh socket's")
    assert not problems, "\n".join(problems)


# --- the faults ---------------------------------------------------------------------------


def scenario(cluster, name: str, fault, *, after: float = AFTER) -> dict:
    return asyncio.run(asyncio.wait_for(run_scenario(cluster, name, fault, after=after), 90))


@pytest.mark.services
@pytest.mark.timeout(240)
def test_a_worker_killed_under_the_youth_mid_conversation(faults_cluster):
    cluster = faults_cluster
    killed = {}

    async def kill(chat):
        victim = chat.workers["youth"]
        killed["worker"] = victim
        answer = await asyncio.to_thread(cluster.kill_worker, victim, "KILL")
        assert answer["signal"] == "SIGKILL" and not answer["running"]
        return {
            "killed_worker": victim,
            "on_it": [n for n, w in chat.workers.items() if w == victim],
        }

    try:
        result = scenario(cluster, "a_worker_sigkill", kill)
    finally:
        if killed:
            cluster.start_worker(killed["worker"])
    assert result["sides"]["youth"]["reconnects"] >= 1
    check(result)


@pytest.mark.services
@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    "layer, signal, down",
    [("pubsub", "TERM", 0), ("pubsub", "KILL", 2), ("core", "KILL", 2)],
    ids=["redis_term", "redis_kill_down_2s", "redis_kill_down_2s_core_layer"],
)
def test_redis_restarts_mid_conversation(make_cluster, layer, signal, down):
    """The default layer (RedisPubSubChannelLayer) and the other one (RedisChannelLayer,
    YOUTHHUB_CHANNEL_LAYER=core), which keeps group memberships in Redis: a Redis without
    persistence (as here) loses them when it restarts."""
    cluster = make_cluster(2, ENV | {"YOUTHHUB_CHANNEL_LAYER": layer})

    async def restart(chat):
        answer = await asyncio.to_thread(cluster.restart_redis, signal, down)
        return {"layer": layer, "signal": signal, "down_seconds": down, "restart": answer}

    # Nobody writes once Redis is back: what was sent while it was away must still arrive.
    name = f"b_redis_{signal.lower()}_down_{down}s" + ("_core_layer" if layer == "core" else "")
    result = scenario(cluster, name, restart, after=0)
    check(result)


@pytest.mark.services
@pytest.mark.timeout(240)
def test_connections_cut_without_a_close_frame(faults_cluster):
    cluster = faults_cluster

    async def cut(chat):
        chat.youth.drop(offline=2)
        chat.waiting.drop(offline=2)
        await asyncio.sleep(3)  # the staff member keeps writing; the youths come back
        chat.staff.drop(offline=2)  # then the staff member loses the network
        return {"dropped": ["youth", "waiting", "staff"], "offline_seconds": 2}

    result = scenario(cluster, "c_connections_cut", cut)
    for side in ("youth", "staff"):
        assert result["sides"][side]["reconnects"] >= 1
    assert result["queue"]["waiting_reconnects"] >= 1
    check(result)
