"""A chat client that behaves like the real one (frontend/static/youthhub/js/connection.js and
chatview.js), for the fault tests: it keeps what it saw and counts what went wrong instead of
stopping at the first problem.

- `hello` on every (re)connect with what it has seen (youth: token, conversation_id,
  last_seq; staff: last_seq per conversation);
- an outbox of unacknowledged messages, resent with the same client_id after every
  `welcome`; a message is acknowledged by its own echo (same client_id) or refused by an
  `error` naming that client_id (the page then drops it, as the real one does);
- delivery tracked by `seq`: a seq seen before is a duplicate, a jump is a gap (answered with
  `sync`, as a careful client would), `history` and `resync_required` as the pages handle
  them;
- reconnects with bounded, jittered backoff through nginx; `drop()` cuts the TCP connection
  without a close frame (a phone losing its network) and keeps it "offline" for a while.

Everything runs on one asyncio loop; times are `time.monotonic()`.
"""

import asyncio
import json
import random
import time
from collections import Counter

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

MIN_DELAY = 0.25  # seconds; the page uses 0.5 s (a test has less time to spend)
MAX_DELAY = 2.0
UNAUTHORIZED = 4401


class ChatClient:
    def __init__(
        self,
        name: str,
        side: str,
        url: str,
        *,
        origin: str,
        user_agent: str,
        token: str | None = None,
        cookie: str | None = None,
    ):
        assert side in ("youth", "staff")
        self.name, self.side, self.url = name, side, url
        self.origin, self.user_agent = origin, user_agent
        self.token, self.cookie = token, cookie
        self.conversation_id: str | None = None
        # delivery
        self.seen: dict[int, dict] = {}  # seq -> the first frame of that message
        self.order: list[int] = []  # seqs in the order they reached the page
        self.delivered_at: dict[int, float] = {}
        self.duplicates = 0  # a `message` frame for a seq already shown
        self.out_of_order = 0  # a seq below one already shown, arriving late
        self.gaps = 0  # a jump over missing seqs (answered with `sync`)
        self.resyncs = 0  # resync_required frames
        self.synced = 0  # messages that only came through `history`
        # sending
        self.outbox: dict[str, dict] = {}  # client_id -> frame, unacknowledged
        self.created: dict[str, float] = {}  # client_id -> when the page made it
        self.acked: dict[str, int] = {}  # client_id -> seq
        self.acked_at: dict[str, float] = {}
        self.refused: Counter = Counter()  # error code -> messages refused with it
        self.resent = 0
        self.number = 0
        # connection
        self.ws = None
        self.ready = False
        self.stopped = False
        self.offline_until = 0.0
        self.connects: list[float] = []  # welcome times
        self.closes: list[tuple[float, int | None]] = []  # (time, close code)
        self.unauthorized = False
        self.welcome: dict | None = None
        self.queued: dict | None = None  # youth: the last `queued` frame on this socket
        self.queue: list | None = None  # staff: the queue as the page shows it
        self.states: list[dict] = []  # assigned / ended frames
        self.errors: Counter = Counter()
        self._welcomed = asyncio.Event()
        self._task: asyncio.Task | None = None

    # -- what the page remembers -------------------------------------------------------------

    @property
    def latest(self) -> int:
        return max(self.seen, default=0)

    def hello(self) -> dict:
        if self.side == "youth":
            frame = {"type": "hello", "token": self.token}
            if self.conversation_id:
                frame |= {"conversation_id": self.conversation_id, "last_seq": self.latest}
            return frame
        if self.conversation_id:
            return {"type": "hello", "last_seq": {self.conversation_id: self.latest}}
        return {"type": "hello"}

    # -- the connection ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def wait_online(self, timeout: float = 15) -> None:
        await asyncio.wait_for(self._welcomed.wait(), timeout)

    async def stop(self) -> None:
        self.stopped = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    def drop(self, offline: float) -> None:
        """The network goes away: the TCP connection ends without a close frame, and the
        client cannot reconnect for `offline` seconds."""
        self.offline_until = time.monotonic() + offline
        if self.ws is not None:
            self.ws.transport.abort()

    async def _run(self) -> None:
        delay = MIN_DELAY
        while not self.stopped:
            wait = self.offline_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            code = None
            try:
                headers = {"Cookie": self.cookie} if self.cookie else None
                async with connect(
                    self.url,
                    origin=self.origin,
                    additional_headers=headers,
                    user_agent_header=self.user_agent,
                    open_timeout=5,
                    close_timeout=1,
                ) as ws:
                    self.ws = ws
                    await ws.send(json.dumps(self.hello()))
                    async for raw in ws:
                        if self.on_frame(json.loads(raw)):
                            delay = MIN_DELAY
                            await self.flush()
                    code = ws.close_code
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            except (OSError, InvalidHandshake, TimeoutError):
                pass
            self.ws = None
            self.ready = False
            self._welcomed.clear()
            self.closes.append((time.monotonic(), code))
            if code == UNAUTHORIZED:
                self.unauthorized = True
                return
            if self.stopped:
                return
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, MAX_DELAY)

    async def send(self, frame: dict) -> bool:
        if not self.ready or self.ws is None:
            return False
        try:
            await self.ws.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        return True

    async def flush(self) -> None:
        for frame in list(self.outbox.values()):
            if await self.send(frame):
                self.resent += 1

    # -- sending -----------------------------------------------------------------------------

    async def say(self, client_id: str, text: str) -> None:
        frame = {"type": "message", "client_id": client_id, "text": text}
        if self.side == "staff":
            frame["conversation_id"] = self.conversation_id
        self.outbox[client_id] = frame
        self.created[client_id] = time.monotonic()
        await self.send(frame)

    async def talk(self, rate: float, stop: asyncio.Event) -> None:
        """Write `rate` messages a second until `stop` is set (client ids `<name>-<n>`)."""
        while not stop.is_set():
            self.number += 1
            await self.say(f"{self.name}-{self.number}", f"{self.name} says {self.number}")
            try:
                await asyncio.wait_for(stop.wait(), 1 / rate)
            except TimeoutError:
                pass

    # -- receiving ---------------------------------------------------------------------------

    def on_frame(self, frame: dict) -> bool:
        """Handle one frame; True for `welcome` (then the outbox is resent)."""
        kind = frame.get("type")
        if kind == "welcome":
            self.welcome = frame
            self.ready = True
            self.connects.append(time.monotonic())
            self._welcomed.set()
            if self.side == "staff":
                self.queue = frame["queue"]
            else:
                self.queued = None  # the new socket says it again (tested: the place is kept)
                if frame.get("conversation"):
                    self.conversation_id = frame["conversation"]["id"]
            return True
        if kind == "message":
            self.show(frame, live=True)
        elif kind == "history" and frame["conversation_id"] == self.conversation_id:
            for message in frame["messages"]:
                self.show(message, live=False)
            if not frame["complete"]:
                self._sync(self.latest)
        elif kind == "resync_required" and frame["conversation_id"] == self.conversation_id:
            self.resyncs += 1
            self._sync(0)
        elif kind == "queued":
            self.queued = frame
            self.conversation_id = frame["conversation_id"]
        elif kind == "queue.update":
            self.queue = frame["queue"]
        elif kind in ("assigned", "ended"):
            self.states.append(frame)
        elif kind == "error":
            self.errors[frame["code"]] += 1
            client_id = frame.get("client_id")
            if client_id and self.outbox.pop(client_id, None) is not None:
                self.refused[frame["code"]] += 1
        return False

    def show(self, frame: dict, *, live: bool) -> None:
        if frame["conversation_id"] != self.conversation_id:
            return
        seq = frame["seq"]
        if frame["sender"] == self.side and frame["client_id"] in self.outbox:
            del self.outbox[frame["client_id"]]
            self.acked[frame["client_id"]] = seq
            self.acked_at[frame["client_id"]] = time.monotonic()
        if seq in self.seen:
            if live:
                self.duplicates += 1
            return
        latest = self.latest
        if seq < latest:
            self.out_of_order += 1
        elif live and seq > latest + 1:
            self.gaps += 1
            self._sync(latest)
        if not live:
            self.synced += 1
        self.seen[seq] = frame
        self.order.append(seq)
        self.delivered_at[seq] = time.monotonic()

    def _sync(self, after_seq: int) -> None:
        frame = {"type": "sync", "after_seq": after_seq}
        if self.side == "staff":
            frame["conversation_id"] = self.conversation_id
        asyncio.get_running_loop().create_task(self.send(frame))


def figures(client: ChatClient, other: ChatClient, truth: list[dict], fault_at: float) -> dict:
    """What this side saw, against the database's record (`truth`: every message of the
    conversation, in seq order, as a fresh socket's `sync` returns them)."""
    by_seq = {m["seq"]: m for m in truth}
    stored = Counter((m["sender"], m["client_id"]) for m in truth)
    lost = sorted(seq for seq in by_seq if seq not in client.seen)
    wrong = sorted(
        seq
        for seq, frame in client.seen.items()
        if (frame["sender"], frame["client_id"])
        != (by_seq.get(seq, {}).get("sender"), by_seq.get(seq, {}).get("client_id"))
    )
    acked_missing = [cid for cid in client.acked if stored[(client.side, cid)] == 0]
    acked_twice = [cid for cid in client.acked if stored[(client.side, cid)] > 1]
    acked_wrong_seq = [
        cid
        for cid, seq in client.acked.items()
        if seq not in by_seq or by_seq[seq]["client_id"] != cid
    ]
    # Delay: from the moment the other page made a message to the moment it reached this page.
    delays = []  # (written, delivered, seq)
    for m in truth:
        if m["sender"] == other.side and m["client_id"] in other.created:
            if m["seq"] in client.delivered_at:
                written = other.created[m["client_id"]]
                delays.append((written, client.delivered_at[m["seq"]], m["seq"]))
    late = [(w, d, seq) for w, d, seq in delays if d - w > 1.0 and d >= fault_at]
    # Recovered: when the last message that took more than a second finally arrived.
    recovered = max((d for _, d, _ in late), default=None)
    slowest = sorted(delays, key=lambda x: x[0] - x[1])[:3]
    ack_delays = [client.acked_at[c] - client.created[c] for c in client.acked]
    reconnects = [t for t in client.connects[1:] if t >= fault_at]
    return {
        "sent": len(client.created),
        "acknowledged": len(client.acked),
        "refused": dict(client.refused),
        "unacknowledged": len(client.outbox),
        "resent_frames": client.resent,
        "delivered": len(client.seen),
        "delivered_by_sync": client.synced,
        "duplicated": client.duplicates,
        "lost": len(lost),
        "lost_seqs": lost[:20],
        "wrong": len(wrong),
        "out_of_order": client.out_of_order,
        "in_order": client.order == sorted(client.order),
        "gaps_seen": client.gaps,
        "resync_required": client.resyncs,
        "acknowledged_not_stored": len(acked_missing),
        "acknowledged_stored_twice": len(acked_twice),
        "acknowledged_wrong_seq": len(acked_wrong_seq),
        "reconnects": len(client.connects) - 1,
        "close_codes": [code for t, code in client.closes if t >= fault_at],
        "reconnect_s": round(reconnects[0] - fault_at, 2) if reconnects else None,
        "welcomes_s": [round(t - fault_at, 2) for t in reconnects],
        "late_messages": len(late),
        "max_delay_s": round(max((d - w for w, d, _ in delays), default=0.0), 2),
        # (seq, written, delivered), seconds from the fault
        "slowest": [(seq, round(w - fault_at, 2), round(d - fault_at, 2)) for w, d, seq in slowest],
        "recovered_s": round(recovered - fault_at, 2) if recovered is not None else 0.0,
        "max_ack_s": round(max(ack_delays, default=0.0), 2),
        "errors": dict(client.errors),
    }
