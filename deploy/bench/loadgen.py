"""The load generator: one asyncio loop per process, commanded by the orchestrator (run.py)
over a multiprocessing pipe, so two processes share the load and the generator is not the
bottleneck on its own.

Each process holds its share of the sockets: idle youth, staff dashboards (one socket per staff
member, up to 10 conversations each, as the real dashboard) and the youth of the conversations
those staff members take, so both ends of a conversation live in the same process.

Two targets with the same load shape:
- `youthhub`: POST /api/youth/session, /ws/youth/ hello, request (pool `bench`), the staff
  member's accept, then messages both ways with typing and read receipts, and staff `end`;
- `relay`: the bare relay of deploy/bench/relay.py (hello with the pair's group, staff `join`,
  the same frames relayed, `leave`).

Latency: a message's client_id carries the sender's wall clock (time.time_ns()) at send; the
other side's client takes its clock when the frame comes off the socket, on the same machine.
"""

import asyncio
import collections
import concurrent.futures
import json
import random
import time
import traceback
import urllib.request

import websockets
from websockets.asyncio.client import connect

SLOW_MS = 100.0  # deliveries this slow are listed (when they were sent), to see patterns
TYPING_LEAD = 0.3  # typing {active: true} this long before each message
SETUP_TIMEOUT = 30.0
TEXT = "Hei! Dette er en melding fra benchmarken, omtrent så lang som en vanlig chatmelding."


class Sock:
    """A WebSocket with a reader task: waiters get the frames they expect, the rest goes to
    `on_frame(frame, received_at)`."""

    def __init__(self, ws, stats: "Stats", on_frame=None):
        self.ws = ws
        self.stats = stats
        self.on_frame = on_frame
        self.waiters: list[tuple] = []
        self.closed = False
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                now = time.time()
                frame = json.loads(raw)
                kind = frame.get("type")
                self.stats.frames_in[kind] += 1
                if kind == "error":
                    self.stats.errors[frame.get("code", "?")] += 1
                for waiter in list(self.waiters):
                    predicate, future = waiter
                    if not future.done() and predicate(frame):
                        future.set_result(frame)
                        self.waiters.remove(waiter)
                if self.on_frame is not None:
                    self.on_frame(frame, now)
        except websockets.ConnectionClosed:
            pass
        except Exception:
            self.stats.errors["reader:" + traceback.format_exc(limit=1).splitlines()[-1]] += 1
        finally:
            self.closed = True
            for _, future in self.waiters:
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))
            self.waiters.clear()

    def expect(self, predicate) -> asyncio.Future:
        """A future for the next frame matching `predicate` (register it before sending)."""
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_seen)  # a future nobody awaits any more is no warning
        if self.closed:
            future.set_exception(ConnectionError("socket closed"))
        else:
            self.waiters.append((predicate, future))
        return future

    async def send(self, frame: dict):
        self.stats.frames_out[frame["type"]] += 1
        await self.ws.send(json.dumps(frame))

    async def close(self):
        if not self.closed:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except (TimeoutError, websockets.WebSocketException, OSError):
                pass
        self.task.cancel()


def _seen(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def of_type(kind: str):
    return lambda frame: frame.get("type") == kind


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.frames_in: collections.Counter = collections.Counter()
        self.frames_out: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.delivery_ms: list[float] = []
        self.ack_ms: list[float] = []
        self.sent = 0
        self.delivered = 0
        self.late = 0  # delivered after the grace period ended (counted as lost)
        self.slow: list[tuple] = []  # (sent at, ms, receiving side) of deliveries >= SLOW_MS

    def snapshot(self) -> dict:
        return {
            "frames_in": dict(self.frames_in),
            "frames_out": dict(self.frames_out),
            "errors": dict(self.errors),
        }


class Conversation:
    """Both ends of one conversation (youthhub) or pair (relay)."""

    def __init__(self, gen: "Generator", number: int, staff: "Staff", url_index: int):
        self.gen = gen
        self.number = number
        self.staff = staff
        self.url_index = url_index
        self.youth: Sock | None = None
        self.key: str = str(number)  # the conversation id (youthhub) or the pair (relay)
        self.pending: dict[str, float] = {}  # client_id -> sent at, while measuring
        self.phase = random.random()
        self.ready = False

    # -- frames ---------------------------------------------------------------------------

    def message_frame(self, side: str, client_id: str, k: int) -> dict:
        if self.gen.kind == "relay":
            return {
                "type": "message",
                "pair": self.key,
                "sender": side,
                "client_id": client_id,
                "seq": k,
                "text": TEXT,
            }
        frame = {"type": "message", "client_id": client_id, "text": TEXT}
        if side == "staff":
            frame["conversation_id"] = self.key
        return frame

    def typing_frame(self, side: str) -> dict:
        if self.gen.kind == "relay":
            return {"type": "typing", "pair": self.key, "sender": side, "active": True}
        frame = {"type": "typing", "active": True}
        if side == "staff":
            frame["conversation_id"] = self.key
        return frame

    def read_frame(self, side: str, seq: int) -> dict:
        if self.gen.kind == "relay":
            return {"type": "read", "pair": self.key, "sender": side, "seq": seq}
        frame = {"type": "read", "seq": seq}
        if side == "staff":
            frame["conversation_id"] = self.key
        return frame

    def received(self, side: str, frame: dict, now: float):
        """A frame for this conversation arrived at `side` (youth or staff)."""
        if frame.get("type") != "message":
            return
        client_id = frame.get("client_id") or ""
        try:
            sent_at = int(client_id.rsplit(".", 1)[1]) / 1e9
        except (IndexError, ValueError):
            return
        if frame.get("sender") == side:
            if client_id in self.pending:
                self.gen.stats.ack_ms.append((now - sent_at) * 1000)
            return
        sent = self.pending.pop(client_id, None)
        if sent is not None:
            if self.gen.measuring:
                ms = (now - sent_at) * 1000
                self.gen.stats.delivery_ms.append(ms)
                if ms >= SLOW_MS:
                    self.gen.stats.slow.append((round(sent_at, 3), round(ms, 1), side))
                self.gen.stats.delivered += 1
            else:
                self.gen.stats.late += 1
        sock = self.youth if side == "youth" else self.staff.sock
        if sock is not None and not sock.closed:
            self.gen.spawn(sock.send(self.read_frame(side, frame.get("seq", 0))))

    # -- the talk -------------------------------------------------------------------------

    async def talk(self, start: float, end: float, rate: float):
        period = 1.0 / rate
        k = 0
        while True:
            due = start + (self.phase + k) * period
            if due >= end:
                return
            side = "youth" if k % 2 == 0 else "staff"
            sock = self.youth if side == "youth" else self.staff.sock
            if sock is None or sock.closed:
                return
            wait = due - TYPING_LEAD - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await sock.send(self.typing_frame(side))
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now_ns = time.time_ns()
            client_id = f"m{self.number}.{k}.{now_ns}"
            self.pending[client_id] = now_ns / 1e9
            self.gen.stats.sent += 1
            await sock.send(self.message_frame(side, client_id, k))
            k += 1


class Staff:
    """One staff dashboard socket (or the relay's equivalent)."""

    def __init__(self, gen: "Generator", index: int, cookie: str | None):
        self.gen = gen
        self.index = index
        self.cookie = cookie
        self.sock: Sock | None = None
        self.conversations: dict[str, Conversation] = {}
        self.pinger: asyncio.Task | None = None

    def on_frame(self, frame: dict, now: float):
        key = frame.get("conversation_id") or frame.get("pair")
        conversation = self.conversations.get(str(key)) if key is not None else None
        if conversation is not None:
            conversation.received("staff", frame, now)

    async def ping(self):
        # The dashboard pings every 25 s; "on now" needs a sign of life within 120 s. Real
        # dashboards opened at different times: the bench's pings are spread over the 25 s
        # too (all at once, 80 of them block the database thread for about a second).
        await asyncio.sleep(random.uniform(0, 25))
        while self.sock is not None and not self.sock.closed:
            await self.sock.send({"type": "ping"})
            await asyncio.sleep(25)


class Generator:
    def __init__(self, index: int, pipe):
        self.index = index
        self.pipe = pipe
        self.kind = "youthhub"
        self.urls: list[str] = []
        self.stats = Stats()
        self.idle: list[Sock] = []
        self.staff: dict[int, Staff] = {}
        self.conversations: dict[int, Conversation] = {}
        self.measuring = False
        self.tasks: set[asyncio.Task] = set()
        self.http = concurrent.futures.ThreadPoolExecutor(16)
        self.pool = "bench"
        self.idle_tokens: dict[int, str] = {}

    def spawn(self, coro):
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- plumbing ---------------------------------------------------------------------------

    def url(self, index: int) -> str:
        return self.urls[index % len(self.urls)]

    async def open(self, index: int, path: str, cookie: str | None = None, on_frame=None) -> Sock:
        base = self.url(index)
        ws = await connect(
            base.replace("http://", "ws://") + path,
            origin=base,
            additional_headers={"Cookie": cookie} if cookie else None,
            open_timeout=SETUP_TIMEOUT,
            ping_interval=None,
            close_timeout=2,
            max_size=2**22,
        )
        return Sock(ws, self.stats, on_frame)

    def _post_session(self, base: str) -> str:
        request = urllib.request.Request(base + "/api/youth/session", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=SETUP_TIMEOUT) as answer:
            return json.loads(answer.read())["token"]

    async def new_session(self, index: int) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.http, self._post_session, self.url(index))

    async def bounded(self, items, fn, concurrency: int) -> tuple[int, collections.Counter]:
        """Run fn(item) for each item, `concurrency` at a time: (succeeded, failures by kind)."""
        semaphore = asyncio.Semaphore(concurrency)
        failures: collections.Counter = collections.Counter()

        async def one(item):
            async with semaphore:
                try:
                    await asyncio.wait_for(fn(item), SETUP_TIMEOUT * 2)
                    return True
                except Exception as exc:  # counted and reported, never fatal for the step
                    failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    return False

        done = await asyncio.gather(*(one(item) for item in items))
        return sum(done), failures

    # -- commands ---------------------------------------------------------------------------

    async def cmd_target(self, kind: str, urls: list[str], pool: str = "bench") -> dict:
        self.kind, self.urls, self.pool = kind, list(urls), pool
        return {"ok": True}

    async def cmd_idle(self, numbers: list[int], concurrency: int = 50) -> dict:
        started = time.monotonic()

        async def one(number: int):
            if self.kind == "relay":
                sock = await self.open(number, "/ws/relay/")
                welcome = sock.expect(of_type("welcome"))
                await sock.send({"type": "hello", "groups": [f"idle.{number}"]})
            else:
                # An idle youth's session is made once per bench run (the database stays
                # between worker counts and layers); the active youth get a new one each step.
                token = self.idle_tokens.get(number) or await self.new_session(number)
                self.idle_tokens[number] = token
                sock = await self.open(number, "/ws/youth/")
                welcome = sock.expect(of_type("welcome"))
                await sock.send({"type": "hello", "token": token})
            self.idle.append(sock)
            await welcome

        ok, failures = await self.bounded(numbers, one, concurrency)
        return {
            "connected": ok,
            "failed": dict(failures),
            "seconds": time.monotonic() - started,
        }

    async def cmd_burst(self, numbers: list[int]) -> dict:
        """Connect len(numbers) sockets at once (youthhub: idle youth on a second tab, with the
        same token; relay: a group each), wait for every welcome, close them again."""
        started = time.monotonic()
        socks: list[Sock] = []

        async def one(number: int):
            path = "/ws/relay/" if self.kind == "relay" else "/ws/youth/"
            sock = await self.open(number, path)
            socks.append(sock)
            welcome = sock.expect(of_type("welcome"))
            if self.kind == "relay":
                await sock.send({"type": "hello", "groups": [f"burst.{number}"]})
            else:
                await sock.send({"type": "hello", "token": self.idle_tokens[number]})
            await welcome

        ok, failures = await self.bounded(numbers, one, max(1, len(numbers)))
        seconds = time.monotonic() - started
        await asyncio.gather(*(s.close() for s in socks), return_exceptions=True)
        return {"connected": ok, "failed": dict(failures), "seconds": seconds}

    async def cmd_staff(self, staff: list[dict], concurrency: int = 10) -> dict:
        started = time.monotonic()

        async def one(item: dict):
            member = Staff(self, item["index"], item.get("cookie"))
            self.staff[member.index] = member
            if self.kind == "relay":
                member.sock = await self.open(member.index, "/ws/relay/", None, member.on_frame)
                welcome = member.sock.expect(of_type("welcome"))
                await member.sock.send({"type": "hello", "groups": []})
                await welcome
                return
            member.sock = await self.open(
                member.index, "/ws/staff/", member.cookie, member.on_frame
            )
            welcome = member.sock.expect(lambda f: f.get("type") in ("welcome", "error"))
            await member.sock.send({"type": "hello"})
            first = await welcome
            if first["type"] == "error":
                raise RuntimeError(f"staff hello: {first.get('code')}")
            for frame, answer in (
                ({"type": "status", "status": "available"}, "status"),
                ({"type": "capacity", "capacity": 10}, "capacity"),
            ):
                reply = member.sock.expect(of_type(answer))
                await member.sock.send(frame)
                await reply
            member.pinger = asyncio.create_task(member.ping())

        ok, failures = await self.bounded(staff, one, concurrency)
        return {"connected": ok, "failed": dict(failures), "seconds": time.monotonic() - started}

    async def cmd_prepare(self, conversations: list[dict], concurrency: int = 10) -> dict:
        """Start conversations: {number, staff} each. Youthhub: a new anonymous session, hello,
        request, the staff member's accept; relay: hello with the pair's group, staff join."""
        started = time.monotonic()
        self.stats.reset()

        async def one(item: dict):
            staff = self.staff[item["staff"]]
            conversation = Conversation(self, item["number"], staff, item["number"])
            self.conversations[conversation.number] = conversation
            on_frame = lambda frame, now: conversation.received("youth", frame, now)  # noqa: E731
            if self.kind == "relay":
                conversation.youth = await self.open(conversation.url_index, "/ws/relay/")
                conversation.youth.on_frame = on_frame
                welcome = conversation.youth.expect(of_type("welcome"))
                await conversation.youth.send(
                    {"type": "hello", "groups": [f"pair.{conversation.key}"]}
                )
                await welcome
                staff.conversations[conversation.key] = conversation
                joined = staff.sock.expect(
                    lambda f: f.get("type") == "joined" and str(f.get("pair")) == conversation.key
                )
                await staff.sock.send({"type": "join", "pair": conversation.key})
                await joined
                conversation.ready = True
                return
            token = await self.new_session(conversation.url_index)
            youth = conversation.youth = await self.open(conversation.url_index, "/ws/youth/")
            welcome = youth.expect(of_type("welcome"))
            await youth.send({"type": "hello", "token": token})
            await welcome
            queued = youth.expect(lambda f: f.get("type") in ("queued", "error"))
            await youth.send({"type": "request", "pool": self.pool, "topic": "school"})
            frame = await queued
            if frame["type"] == "error":
                raise RuntimeError(f"request: {frame.get('code')}")
            conversation.key = frame["conversation_id"]
            staff.conversations[conversation.key] = conversation
            youth.on_frame = on_frame
            key = conversation.key
            staff_assigned = staff.sock.expect(
                lambda f: f.get("type") == "assigned" and f["conversation"]["id"] == key
            )
            youth_assigned = youth.expect(
                lambda f: f.get("type") == "assigned" and f["conversation"].get("staff")
            )
            await staff.sock.send({"type": "accept", "conversation_id": key})
            await staff_assigned
            await youth_assigned
            conversation.ready = True

        ok, failures = await self.bounded(conversations, one, concurrency)
        return {"ready": ok, "failed": dict(failures), "seconds": time.monotonic() - started}

    async def cmd_run(self, start_at: float, duration: float, rate: float, grace: float) -> dict:
        """Talk from start_at for `duration` seconds, then wait `grace` for the last deliveries."""
        self.stats.reset()
        for conversation in self.conversations.values():
            conversation.pending.clear()
        ready = [c for c in self.conversations.values() if c.ready]
        wait = start_at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self.measuring = True
        end = start_at + duration
        talks = [asyncio.create_task(c.talk(start_at, end, rate)) for c in ready]
        await asyncio.gather(*talks, return_exceptions=True)
        left = end + grace - time.time()
        while left > 0 and any(c.pending for c in ready):
            await asyncio.sleep(min(0.1, left))
            left = end + grace - time.time()
        self.measuring = False
        lost = sum(len(c.pending) for c in ready)
        stats = self.stats
        return {
            "conversations": len(ready),
            "sent": stats.sent,
            "delivered": stats.delivered,
            "lost": lost,
            "delivery_ms": stats.delivery_ms,
            "ack_ms": stats.ack_ms,
            "slow": stats.slow[:500],
            "sockets": self.open_sockets(),
            **stats.snapshot(),
        }

    def open_sockets(self) -> int:
        socks = [*self.idle, *(s.sock for s in self.staff.values() if s.sock)]
        socks += [c.youth for c in self.conversations.values() if c.youth]
        return sum(1 for s in socks if not s.closed)

    async def cmd_end(self, concurrency: int = 20) -> dict:
        """End every conversation (staff `end` / relay `leave`) and close the youth sockets."""
        started = time.monotonic()

        async def one(conversation: Conversation):
            staff, youth = conversation.staff, conversation.youth
            try:
                if conversation.ready and staff.sock is not None and not staff.sock.closed:
                    if self.kind == "relay":
                        left = staff.sock.expect(
                            lambda f: (
                                f.get("type") == "left" and str(f.get("pair")) == conversation.key
                            )
                        )
                        await staff.sock.send({"type": "leave", "pair": conversation.key})
                        await left
                    else:
                        ended = youth.expect(of_type("ended"))
                        await staff.sock.send({"type": "end", "conversation_id": conversation.key})
                        await ended
            finally:
                staff.conversations.pop(conversation.key, None)
                if youth is not None:
                    await youth.close()

        ok, failures = await self.bounded(list(self.conversations.values()), one, concurrency)
        self.conversations.clear()
        return {"ended": ok, "failed": dict(failures), "seconds": time.monotonic() - started}

    async def cmd_close(self) -> dict:
        """Close every socket (idle, staff, what is left of conversations)."""
        socks = [*self.idle, *(c.youth for c in self.conversations.values() if c.youth)]
        for member in self.staff.values():
            if member.pinger:
                member.pinger.cancel()
            if member.sock:
                socks.append(member.sock)
        await asyncio.gather(*(s.close() for s in socks), return_exceptions=True)
        self.idle.clear()
        self.staff.clear()
        self.conversations.clear()
        return {"closed": len(socks)}

    async def cmd_stats(self) -> dict:
        return {"sockets": self.open_sockets(), **self.stats.snapshot()}

    async def serve(self):
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, self.pipe.recv)
            name = command.get("cmd")
            if name == "quit":
                await self.cmd_close()
                self.pipe.send({"ok": True})
                return
            try:
                result = await getattr(self, "cmd_" + name)(**command.get("args", {}))
            except Exception as exc:
                result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            self.pipe.send(result)


def main(index: int, pipe) -> None:
    """Entry point of a generator process (multiprocessing.Process target)."""
    random.seed(index)
    asyncio.run(Generator(index, pipe).serve())
