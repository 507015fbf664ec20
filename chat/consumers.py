"""Thin WebSocket adapters: frame -> validate (protocol) -> one service/selector call -> reply.

What lives here is transport only: per-socket rate limit and frame size, which groups this
socket listens to, and per-socket exactly-once, in-order delivery of messages (the socket
remembers the highest seq it sent for each conversation, drops duplicates and fills gaps
from the database). Rules about who may do what live in chat.services / chat.selectors.
"""

import asyncio
import json
import logging
import math
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from dropin import selectors as queue
from dropin import services as queue_services
from dropin import ticker
from youthhub import metrics
from youthhub.accounts.signals import REVOKED
from youthhub.accounts.sockets import SocketLogin
from youthhub.crisis import crisis_info_frame
from youthhub.handover import selectors as handover_selectors
from youthhub.handover import services as handover_services
from youthhub.handover.events import partner_service_group
from youthhub.ratelimit import TokenBucket
from youthhub.staff import selectors as staff_selectors

from . import events, layerwatch, protocol, selectors, services
from .actors import Actor
from .errors import ServiceError
from .models import STAFF_TAGS

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
# A typing frame for a conversation the database confirmed (member, open) less than this many
# seconds ago is relayed by the socket itself: typing stores nothing, and a check per
# keystroke pause cost a database call per message. Ending or letting go forgets the check.
TYPING_RECHECK = 30.0
# How long a message that overtook an earlier one waits for it before the database fills the
# gap (push_message).
GAP_WAIT = 0.5
# "Reconnect now and say hello with what you have seen": the channel layer lost events
# (chat.layerwatch), a group could not be joined, or the hello failed on our side.
CLOSE_RECONNECT = layerwatch.CLOSE_RECONNECT
# Sent again on every queue change (and as a direct reply plus a group event): a socket
# passes one on only if it differs from the last of its kind for that conversation.
REPEATED_FRAMES = ("queued", "queue.update", "assigned", "ended", "passed")
# Frames that only staff may ever see (internal notes, transfers, continuity).
STAFF_ONLY_FRAMES = frozenset(
    {
        "note",
        "staff_context",
        "transfer.offer",
        "transfer.closed",
        "transfer.preview",
        "earlier",
        "block.update",
    }
)


# Why a partner's chat closed (`closed.reason`), by the handover's new state.
# A partner whose service was not given the chat when staff passed it: their view closes.
CLOSED_PASSED = "passed_to_another_service"


def proposal(frame) -> dict:
    """What staff ask the youth about, from handover_propose / handover_revise."""
    return {
        "reach": frame.reach,
        "summary": frame.summary,
        "named_person": frame.named_person,
        "scope": frame.scope,
    }


def db(fn):
    return database_sync_to_async(fn)


class ProtocolConsumer(AsyncWebsocketConsumer):
    frames: dict[str, type[protocol.Frame]] = {}
    kind = ""
    # Staff and partner sockets: the login they were opened with (checked again while open;
    # youthhub.accounts.sockets). Youth sockets have none.
    login: SocketLogin | None = None

    async def connect(self):
        self.actor: Actor | None = None
        self.bucket = TokenBucket(
            rate=settings.YOUTHHUB_FRAMES_PER_SECOND, burst=settings.YOUTHHUB_FRAME_BURST
        )
        self.joined: set[str] = set()
        self.delivered: dict[str, int] = {}  # conversation id -> highest seq sent on this socket
        # Followed conversations whose membership and openness the database confirmed for a
        # typing frame (monotonic time); dropped when one ends or is let go of.
        self.checked: dict[str, float] = {}
        # Messages that came before an earlier one, by conversation and seq (push_message).
        self.held: dict[str, dict[int, tuple[dict, bool]]] = {}
        self.gap_timers: dict[str, asyncio.TimerHandle] = {}
        self.gap_fills: set[asyncio.Task] = set()
        self.last_sent: dict[str, dict] = {}  # "kind:conversation" -> last such frame sent
        self.language = self.chosen_language()
        ticker.ensure_started()
        events.attach(asyncio.get_running_loop())
        await self.accept()
        metrics.socket_opened(self.kind)
        layerwatch.register(self)

    def chosen_language(self) -> str:
        """The language the page was shown in (the switcher's cookie), else the default:
        error messages on this socket speak it."""
        chosen = self.scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME, "")
        if chosen in dict(settings.LANGUAGES):
            return chosen
        return settings.LANGUAGE_CODE

    async def disconnect(self, code):
        for timer in self.gap_timers.values():
            timer.cancel()
        for task in self.gap_fills:
            task.cancel()
        layerwatch.unregister(self)
        metrics.socket_closed(self.kind)
        for group in self.joined:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # Redis away: it forgets the subscription by itself
                logger.warning("could not leave a group on disconnect: %s", type(exc).__name__)
        self.joined.clear()

    # -- inbound -------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        with translation.override(self.language):
            await self.handle(text_data)

    async def handle(self, text_data: str | None):
        if text_data is None:
            return await self.send_error("bad_frame", _("Only JSON text frames are accepted."))
        if len(text_data) > settings.YOUTHHUB_MAX_FRAME_CHARS:
            return await self.send_error("too_large", _("The frame is too large."))
        if not self.bucket.take():
            return await self.send_error("rate_limited", _("Slow down a little and try again."))
        frame = None
        try:
            frame = protocol.parse(text_data, self.frames)
            if self.login is not None and not await self.login.still_valid(frame.type):
                raise ServiceError("unauthorized", _("You are logged out. Log in again."))
            if self.actor is None and frame.type != "hello":
                raise ServiceError("hello_required", _("Send hello first."))
            if self.actor is not None and frame.type == "hello":
                raise ServiceError("not_allowed", _("hello was already sent on this connection."))
            metrics.frame_accepted(self.kind, frame.type)
            await getattr(self, "on_" + frame.type)(frame)
        except ServiceError as exc:
            metrics.error_sent(self.kind, exc.code)
            reply = exc.frame()
            if getattr(frame, "client_id", None):
                reply["client_id"] = frame.client_id  # tells the client which send failed
            await self.send_frame(reply)
            if exc.code == "unauthorized":
                await self.close(code=CLOSE_UNAUTHORIZED)
        except Exception:
            logger.exception("unhandled error in %s consumer", self.kind)
            await self.send_error("internal", _("Something went wrong on our side. Try again."))
            if frame is not None and frame.type == "hello":
                # No welcome will come: without this the page would wait on an open socket.
                await self.close(code=CLOSE_RECONNECT)

    async def reconnect(self):
        """chat.layerwatch: the channel layer may have lost frames for this socket, and works
        again. The client reconnects at once and catches up from the database."""
        await self.close(code=CLOSE_RECONNECT)

    async def on_ping(self, frame):
        await self.send_frame({"type": "pong"})

    # Frames both sides send; `target(frame)` is the conversation they are about.

    def target(self, frame) -> str:
        raise NotImplementedError

    async def on_message(self, frame):
        sent, _ = await db(services.message_send)(
            actor=self.actor,
            conversation_id=self.target(frame),
            client_id=frame.client_id,
            text=frame.text,
        )
        await self.push_message(sent)

    async def on_typing(self, frame):
        conversation_id = self.target(frame)
        if self.checked.get(conversation_id, -math.inf) > time.monotonic() - TYPING_RECHECK:
            frame = selectors.typing_frame(conversation_id, self.kind, frame.active)
            await events.publish_now(events.conversation_group(conversation_id), frame)
            return
        await db(services.conversation_typing)(
            actor=self.actor, conversation_id=conversation_id, active=frame.active
        )
        if conversation_id in self.delivered:
            self.checked[conversation_id] = time.monotonic()

    async def on_read(self, frame):
        await db(services.conversation_mark_read)(
            actor=self.actor, conversation_id=self.target(frame), seq=frame.seq
        )

    async def on_sync(self, frame):
        await self.send_history(self.target(frame), frame.after_seq)

    async def on_end(self, frame):
        conversation = await db(services.conversation_end)(
            actor=self.actor, conversation_id=self.target(frame), **self.end_details(frame)
        )
        await self.push(selectors.ended_frame(conversation, by=self.kind))

    def end_details(self, frame) -> dict:
        return {}

    # -- outbound ------------------------------------------------------------------------------

    async def send_frame(self, frame: dict):
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def send_error(self, code: str, message: str):
        metrics.error_sent(self.kind, code)
        await self.send_frame({"type": "error", "code": code, "message": message})

    async def deliver(self, event):
        """Channel-layer handler for every frame published by chat.events."""
        if event["frame"].get("type") == REVOKED:
            # The user logged out (this session), was deactivated, or changed password.
            if self.login is not None and self.login.concerns(event["frame"]):
                await self.close(code=CLOSE_UNAUTHORIZED)
            return
        if self.actor is None:
            return  # before hello: the welcome will carry the state
        try:
            await self.push(event["frame"])
        except Exception:
            # One bad event must not take the socket down; the client catches up on reconnect.
            logger.exception("could not deliver a %s frame", event["frame"].get("type"))

    async def push(self, frame: dict):
        kind = frame["type"]
        conversation_id = frame.get("conversation_id") or frame.get("conversation", {}).get("id")
        if kind == "message":
            return await self.push_message(frame, live=True)
        if kind == "typing" and frame["who"] == self.kind:
            return  # nobody needs to see their own typing
        if kind in REPEATED_FRAMES and self.repeats(frame, conversation_id):
            return
        if kind == "ended":
            self.checked.pop(conversation_id, None)
        await self.send_frame(frame)

    def repeats(self, frame: dict, conversation_id: str | None) -> bool:
        """Whether this socket already sent this frame (and remember it if not)."""
        key = f"{frame['type']}:{conversation_id}"
        seen = frame
        if frame["type"] == "ended":
            seen = frame[
                "state"
            ]  # the reply says by=youth, the group event the same: one is enough
        if self.last_sent.get(key) == seen:
            return True
        self.last_sent[key] = seen
        return False

    async def push_message(self, frame: dict, *, live: bool = False):
        """Send each message once, in seq order. `live`: it just arrived from the channel
        layer (its delivery latency is measured).

        A message that comes before an earlier one (this socket's own echo overtaking the
        other side's event, or two workers' events crossing) is held for up to GAP_WAIT: the
        missing one is nearly always on its way. Only if it does not come is the gap filled
        from the database. (Filling at once cost a database call per crossing, and crossings
        multiply exactly when a worker is busy.)"""
        conversation_id, seq = frame["conversation_id"], frame["seq"]
        last = self.delivered.get(conversation_id)
        if last is None or seq <= last:
            return
        if seq > last + 1:
            self.held.setdefault(conversation_id, {})[seq] = (frame, live)
            if conversation_id not in self.gap_timers:
                self.gap_timers[conversation_id] = asyncio.get_running_loop().call_later(
                    GAP_WAIT, self.gap_due, conversation_id
                )
            return
        await self.deliver_message(frame, live)
        await self.release_held(conversation_id)

    async def deliver_message(self, frame: dict, live: bool):
        self.delivered[frame["conversation_id"]] = frame["seq"]
        if live and frame["sender"] != self.kind:
            metrics.message_delivered(self.kind, frame["sent_at"])
        await self.send_frame(frame)

    async def release_held(self, conversation_id: str):
        """Send the held messages that follow on from what was delivered."""
        held = self.held.get(conversation_id)
        while held and conversation_id in self.delivered:
            following = self.delivered[conversation_id] + 1
            for seq in [seq for seq in held if seq < following]:
                del held[seq]
            if following not in held:
                break
            await self.deliver_message(*held.pop(following))
        if not held:
            self.held.pop(conversation_id, None)
            timer = self.gap_timers.pop(conversation_id, None)
            if timer is not None:
                timer.cancel()

    def gap_due(self, conversation_id: str):
        self.gap_timers.pop(conversation_id, None)
        task = asyncio.ensure_future(self.fill_gap(conversation_id))
        self.gap_fills.add(task)
        task.add_done_callback(self.gap_fill_done)

    def gap_fill_done(self, task: asyncio.Task):
        self.gap_fills.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a message gap fill failed: %s", type(task.exception()).__name__)

    async def fill_gap(self, conversation_id: str):
        held = self.held.get(conversation_id)
        last = self.delivered.get(conversation_id)
        if not held or last is None:
            return
        try:
            with translation.override(self.language):
                gap, _ = await db(selectors.history)(
                    self.actor, conversation_id, after_seq=last, upto_seq=max(held)
                )
        except ServiceError:
            # Not part of it any more (transferred, passed): nothing of it is for this socket.
            self.held.pop(conversation_id, None)
            return
        except Exception as exc:
            # The database is away: the held messages (the sender's own echo among them) must
            # not be dropped silently. The client reconnects and gets them by `last_seq`.
            logger.warning("could not fill a message gap: %s", type(exc).__name__)
            await self.close(code=CLOSE_RECONNECT)
            return
        for missing in gap:
            if missing["seq"] > self.delivered.get(conversation_id, missing["seq"]):
                await self.deliver_message(missing, False)
        if conversation_id in self.delivered:
            await self.release_held(conversation_id)

    async def join(self, group: str):
        if group not in self.joined:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                # Open but outside the group, the socket would hear nothing more from it: the
                # client reconnects and joins afresh (the error goes on to `handle`).
                await self.close(code=CLOSE_RECONNECT)
                raise
            self.joined.add(group)

    async def follow(self, conversation_id: str, after_seq: int):
        """Listen to a conversation and replay what this client has not seen (bounded)."""
        await self.join(events.conversation_group(conversation_id))
        limit = settings.YOUTHHUB_REPLAY_LIMIT
        frames, latest = await db(selectors.history)(
            self.actor, conversation_id, after_seq=after_seq, limit=limit + 1
        )
        if len(frames) > limit:
            # Too much to replay frame by frame: the client pages through `sync` instead.
            self.delivered[conversation_id] = latest
            await self.send_frame(
                {
                    "type": "resync_required",
                    "conversation_id": conversation_id,
                    "latest_seq": latest,
                }
            )
            return
        # A client cannot have seen more than exists (a stale or forged last_seq).
        start = min(after_seq, latest)
        self.delivered[conversation_id] = max(start, self.delivered.get(conversation_id, 0))
        for message in frames:
            await self.push_message(message)

    async def send_history(self, conversation_id: str, after_seq: int):
        limit = settings.YOUTHHUB_REPLAY_LIMIT
        frames, latest = await db(selectors.history)(
            self.actor, conversation_id, after_seq=after_seq, limit=limit
        )
        await self.send_frame(
            {
                "type": "history",
                "conversation_id": conversation_id,
                "messages": frames,
                "latest_seq": latest,
                "complete": not frames or frames[-1]["seq"] >= latest,
            }
        )


class YouthConsumer(ProtocolConsumer):
    frames = protocol.YOUTH_FRAMES
    kind = "youth"

    async def connect(self):
        self.conversation_id: str | None = None
        await super().connect()

    def target(self, frame) -> str:
        # A youth has one conversation at a time: their frames name none.
        if self.conversation_id is None:
            raise ServiceError("no_conversation", _("Start a chat first."))
        return self.conversation_id

    async def on_hello(self, frame: protocol.YouthHello):
        youth = await db(services.youth_authenticate)(frame.token)
        self.actor = Actor.for_youth(youth)
        await self.join(events.youth_group(youth.id))
        conversation = await db(selectors.youth_open_conversation)(youth)
        summary = selectors.conversation_summary(conversation) if conversation else None
        await self.send_frame(
            {
                "type": "welcome",
                "protocol": protocol.PROTOCOL_VERSION,
                "alias": youth.alias,
                "conversation": summary,
                "previous_staff": await db(selectors.previous_staff)(youth),
                "handovers": await db(handover_selectors.youth_handovers)(youth),
                "limits": {"max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS},
                # {until, lines} while staff have blocked this identity: the calm screen.
                "blocked": await db(selectors.youth_blocked_state)(youth),
            }
        )
        if conversation:
            self.conversation_id = summary["id"]
            # last_seq counts only for the conversation the client says it belongs to.
            seen = (frame.last_seq or 0) if frame.conversation_id == summary["id"] else 0
            await self.follow(summary["id"], seen)
            if conversation.state == conversation.State.QUEUED:
                await self.push_queued(conversation)

    async def push(self, frame: dict):
        if frame["type"] in STAFF_ONLY_FRAMES:
            # Never on a youth group; this is a second lock on the same door.
            logger.error("a staff-only %s frame reached a youth socket", frame["type"])
            return
        if frame["type"] == "blocked":
            # Published in the blocking staff member's language: the numbers in the youth's.
            with translation.override(self.language):
                frame = selectors.blocked_frame(frame["until"])
        elif frame["type"] in ("consent.request", "handover.update"):
            frame = await self.in_my_language(frame)
        await super().push(frame)

    async def in_my_language(self, frame: dict) -> dict:
        """Handover frames are published in bokmål: this socket re-reads the youth's view in
        the language of its page, so the text, and the consent's text version with it, are
        exactly what the page shows (an answer counts only for the text that was read)."""

        def read():
            with translation.override(self.language):
                return handover_selectors.handover_for_youth(
                    self.actor.youth, frame["handover"]["id"]
                )

        try:
            return {**frame, "handover": await db(read)()}
        except ServiceError:
            return frame  # gone meanwhile (deleted with its youth): the frame as it was

    async def on_feedback(self, frame: protocol.YouthFeedback):
        await db(services.feedback_give)(
            youth=self.actor.youth,
            conversation_id=frame.conversation_id,
            scores=frame.scores,
            text=frame.text,
        )
        await self.send_frame({"type": "feedback.thanks", "conversation_id": frame.conversation_id})

    async def on_about(self, frame: protocol.YouthAbout):
        await db(services.about_give)(
            youth=self.actor.youth,
            conversation_id=frame.conversation_id,
            answers={"age": frame.age, "gender": frame.gender, "heard": frame.heard},
        )
        await self.send_frame({"type": "about.thanks", "conversation_id": frame.conversation_id})

    async def on_consent(self, frame: protocol.ConsentAnswer):
        youth = self.actor.youth
        result = await db(handover_services.consent_answer)(
            youth=youth,
            handover_id=frame.handover_id,
            service=frame.service,
            answer=frame.answer,
            text_version=frame.text_version,
            age_band=frame.age_band,
            exceptions=frame.exceptions,
            reason=frame.reason,
            contact=frame.contact,
        )
        view = await db(handover_selectors.handover_for_youth)(youth, frame.handover_id)
        await self.send_frame({"type": "consent.result", "handover": view, "code": result.code})

    async def on_consent_withdraw(self, frame: protocol.HandoverAction):
        await db(handover_services.consent_withdraw)(
            youth=self.actor.youth, handover_id=frame.handover_id
        )
        view = await db(handover_selectors.handover_for_youth)(self.actor.youth, frame.handover_id)
        await self.send_frame({"type": "handover.update", "handover": view})

    async def push_queued(self, conversation):
        try:
            await self.push(await db(queue.queued_frame_for)(conversation))
        except LookupError:
            pass  # taken meanwhile: the `assigned` frame is on its way

    async def on_request(self, frame: protocol.Request):
        conversation = await db(queue_services.queue_request)(
            youth=self.actor.youth,
            target=frame.target,
            topic=frame.topic,
            site_slug=frame.site,
            pool_slug=frame.pool,
        )
        await self.start_following(conversation)

    async def start_following(self, conversation):
        self.conversation_id = str(conversation.id)
        await self.follow(self.conversation_id, 0)
        await self.push_queued(conversation)

    async def on_change(self, frame: protocol.Change):
        conversation = await db(queue_services.queue_change_target)(
            youth=self.actor.youth, target=frame.target, topic=frame.topic
        )
        await self.push_queued(conversation)

    async def on_crisis(self, frame: protocol.Crisis):
        # The numbers first: they must not wait for the database.
        await self.send_frame(crisis_info_frame())
        conversation = await db(queue_services.queue_crisis)(youth=self.actor.youth)
        if str(conversation.id) != self.conversation_id:
            await self.start_following(conversation)
        elif conversation.state == conversation.State.QUEUED:
            await self.push_queued(conversation)


class StaffConsumer(ProtocolConsumer):
    frames = protocol.STAFF_FRAMES
    kind = "staff"

    async def connect(self):
        await super().connect()
        self.login = SocketLogin(self.scope)
        user = self.scope["user"]
        # Logged in, and verified with a two-factor code when that is required.
        self.profile = await db(selectors.staff_profile)(user) if self.login.allowed() else None
        if self.profile is None:
            await self.send_error("unauthorized", _("Log in as staff first."))
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.join(events.staff_user_group(user.id))  # auth.revoked closes this socket

    async def receive(self, text_data=None, bytes_data=None):
        if self.profile is None:
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def on_hello(self, frame: protocol.StaffHello):
        user = self.scope["user"]
        self.actor = Actor.for_staff(user)
        await db(queue_services.staff_seen)(user=user)
        self.me = await db(self.load_scope)()
        await self.join(events.staff_user_group(user.id))
        await self.join(events.STAFF_QUEUE)
        conversations = await db(selectors.staff_open_conversations)(user)
        state = await db(queue.queue_state)()
        summaries = [selectors.conversation_summary(c) for c in conversations]
        entries = queue.personalise(queue.staff_queue(state), self.me)
        self.repeats({"type": "queue.update", "queue": entries}, None)  # welcome carries it
        await self.send_frame(
            {
                "type": "welcome",
                "protocol": protocol.PROTOCOL_VERSION,
                "staff": self.profile.public_card(),
                "status": self.profile.status,
                "capacity": self.profile.capacity,
                "conversations": summaries,
                "queue": entries,
                "transfers": await db(self.my_transfers)(),
                "canned": await db(staff_selectors.canned_replies_for)(self.profile),
                "services": await db(handover_selectors.service_directory)(digital_only=True),
                "handovers": await db(handover_selectors.staff_handovers)(user),
                "consultations": await db(handover_selectors.consultations_for_staff)(user),
                "tags": {key: str(label) for key, label in STAFF_TAGS.items()},
                "blocks": await db(selectors.staff_blocks)(user),
                "limits": {"max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS},
            }
        )
        for summary in summaries:
            await self.follow(summary["id"], frame.last_seq.get(summary["id"], 0))

    def my_transfers(self) -> list[dict]:
        cards = [selectors.transfer_card(t) for t in selectors.pending_transfers()]
        return [card for card in cards if queue.transfer_concerns(card, self.me)]

    async def follow(self, conversation_id: str, after_seq: int):
        await super().follow(conversation_id, after_seq)
        await self.join(events.conversation_staff_group(conversation_id))
        await self.send_frame(
            await db(selectors.staff_context)(self.scope["user"], conversation_id)
        )

    async def unfollow(self, conversation_id: str):
        for group in (
            events.conversation_group(conversation_id),
            events.conversation_staff_group(conversation_id),
        ):
            if group in self.joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.joined.discard(group)
        self.delivered.pop(conversation_id, None)
        self.checked.pop(conversation_id, None)
        self.held.pop(conversation_id, None)
        timer = self.gap_timers.pop(conversation_id, None)
        if timer is not None:
            timer.cancel()

    def load_scope(self):
        profile = selectors.staff_profile(self.scope["user"])
        if profile is None:
            raise ServiceError("unauthorized", _("Log in as staff first."))
        self.profile = profile
        return queue.staff_scope(profile)

    async def push(self, frame: dict):
        kind = frame["type"]
        if kind == "queue.update":
            # The whole region's queue arrives; this person sees what they serve, in their order.
            frame = {"type": "queue.update", "queue": queue.personalise(frame["queue"], self.me)}
        elif kind == "crisis.alert" and not queue.alert_concerns(frame, self.me):
            return
        elif kind in ("transfer.offer", "transfer.closed"):
            if not queue.transfer_concerns(frame["transfer"], self.me):
                return
        if kind == "passed":
            # Passed to the partner who joined: this person lets go of it (every tab).
            if frame["conversation_id"] in self.delivered:
                await self.unfollow(frame["conversation_id"])
        if kind == "assigned":
            conversation = frame["conversation"]
            staff = conversation["staff"] or {}
            if staff.get("id") != self.profile.user_id:
                # Transferred to a colleague: this person lets go of it.
                if conversation["id"] in self.delivered:
                    await self.unfollow(conversation["id"])
                    await self.send_frame(
                        {
                            "type": "transferred",
                            "conversation_id": conversation["id"],
                            "to": conversation["staff"],
                        }
                    )
                return
            if conversation["id"] not in self.delivered:
                # A new assignment of this staff member (from any of their tabs, or a
                # transfer they accepted): listen and catch up.
                await super().push(frame)
                await self.follow(conversation["id"], 0)
                return
        await super().push(frame)

    async def on_ping(self, frame):
        await db(queue_services.staff_seen)(user=self.scope["user"])
        await super().on_ping(frame)

    async def on_accept(self, frame: protocol.Accept):
        conversation = await db(queue_services.queue_accept)(
            user=self.scope["user"], conversation_id=frame.conversation_id, room=frame.room
        )
        await self.push(selectors.assigned_frame(conversation))

    async def on_claim_next(self, frame: protocol.ClaimNext):
        conversation = await db(queue_services.queue_claim_next)(
            user=self.scope["user"], room=frame.room
        )
        await self.push(selectors.assigned_frame(conversation))

    async def on_status(self, frame: protocol.StaffStatus):
        await db(queue_services.staff_set_status)(user=self.scope["user"], status=frame.status)
        self.me = await db(self.load_scope)()
        await self.send_frame({"type": "status", "status": frame.status})

    async def on_arrived(self, frame: protocol.Arrived):
        conversation = await db(queue_services.dropin_arrived)(
            user=self.scope["user"], conversation_id=frame.conversation_id
        )
        await self.push(selectors.assigned_frame(conversation))

    async def on_no_show(self, frame: protocol.NoShow):
        conversation = await db(queue_services.dropin_no_show)(
            user=self.scope["user"], conversation_id=frame.conversation_id
        )
        await self.push(selectors.ended_frame(conversation, by="staff"))

    def target(self, frame) -> str:
        return frame.conversation_id

    def end_details(self, frame: protocol.StaffEnd) -> dict:
        return {"tags": frame.tags, "triage": frame.triage, "feedback": frame.feedback}

    async def on_note(self, frame: protocol.StaffNote):
        note, _ = await db(services.note_add)(
            actor=self.actor,
            conversation_id=frame.conversation_id,
            client_id=frame.client_id,
            text=frame.text,
        )
        await self.send_frame(note)

    async def on_transfer(self, frame: protocol.TransferOffer):
        transfer = await db(queue_services.transfer_offer)(
            user=self.scope["user"],
            conversation_id=frame.conversation_id,
            target=frame.target,
            note=frame.note,
        )
        card = await db(selectors.transfer_card)(transfer)
        await self.send_frame({"type": "transfer.offer", "transfer": card})

    async def on_transfer_preview(self, frame: protocol.TransferAction):
        preview = await db(queue_services.transfer_preview)(
            user=self.scope["user"], transfer_id=frame.transfer_id
        )
        await self.send_frame(preview)

    async def on_transfer_accept(self, frame: protocol.TransferAction):
        conversation = await db(queue_services.transfer_accept)(
            user=self.scope["user"], transfer_id=frame.transfer_id
        )
        await self.push(selectors.assigned_frame(conversation))

    async def on_transfer_decline(self, frame: protocol.TransferAction):
        await db(queue_services.transfer_decline)(
            user=self.scope["user"], transfer_id=frame.transfer_id
        )

    async def on_transfer_cancel(self, frame: protocol.TransferAction):
        await db(queue_services.transfer_cancel)(
            user=self.scope["user"], transfer_id=frame.transfer_id
        )

    async def on_earlier(self, frame: protocol.Earlier):
        reply = await db(services.earlier_read)(
            user=self.scope["user"],
            conversation_id=frame.conversation_id,
            earlier_id=frame.earlier_id,
        )
        await self.send_frame(reply)

    async def on_capacity(self, frame: protocol.Capacity):
        profile = await db(queue_services.staff_set_capacity)(
            user=self.scope["user"], capacity=frame.capacity
        )
        self.me = await db(self.load_scope)()
        await self.send_frame({"type": "capacity", "capacity": profile.capacity})

    async def on_handover_propose(self, frame: protocol.HandoverPropose):
        user = self.scope["user"]
        handover = await db(handover_services.handover_offer)(
            user=user,
            conversation_id=frame.conversation_id,
            service=frame.service,
            **proposal(frame),
        )
        await self.send_handover(handover.id)

    async def on_handover_revise(self, frame: protocol.HandoverRevise):
        handover = await db(handover_services.handover_revise)(
            user=self.scope["user"], handover_id=frame.handover_id, **proposal(frame)
        )
        await self.send_handover(handover.id)

    async def send_handover(self, handover_id):
        card = await db(handover_selectors.staff_card_for)(self.scope["user"], handover_id)
        await self.send_frame({"type": "handover.update", "handover": card})

    async def on_handover_pass(self, frame: protocol.HandoverAction):
        _handover, passed = await db(handover_services.handover_chat_pass)(
            user=self.scope["user"], handover_id=frame.handover_id
        )
        await self.push(passed)

    async def on_handover_close(self, frame: protocol.HandoverAction):
        handover = await db(handover_services.handover_close)(
            user=self.scope["user"], handover_id=frame.handover_id
        )
        await self.send_handover(handover.id)

    async def on_consultation_ask(self, frame: protocol.ConsultationAsk):
        consultation = await db(handover_services.consultation_ask)(
            user=self.scope["user"], service=frame.service, question=frame.question
        )
        await self.send_frame(
            {"type": "consultation.sent", "consultation_id": str(consultation.id)}
        )

    async def on_consultations(self, frame: protocol.Consultations):
        items = await db(handover_selectors.consultations_for_staff)(self.scope["user"])
        await self.send_frame({"type": "consultations", "items": items})

    async def on_block(self, frame: protocol.BlockYouth):
        block, ended = await db(services.youth_block)(
            user=self.scope["user"],
            conversation_id=frame.conversation_id,
            duration=frame.duration,
            reason=frame.reason,
        )
        for conversation in ended:
            if str(conversation.id) in self.delivered:
                await self.push(selectors.ended_frame(conversation, by="staff"))
        card = await db(selectors.block_card)(block)
        await self.send_frame({"type": "block.update", "block": card})

    async def on_unblock(self, frame: protocol.Unblock):
        card = await db(services.youth_unblock)(user=self.scope["user"], block_id=frame.block_id)
        await self.send_frame({"type": "block.update", "block": card})

    async def on_shift(self, frame: protocol.Shift):
        await self.send_frame({"type": "shift", "staff": await db(queue.shift)(self.me)})


class PartnerConsumer(ProtocolConsumer):
    """Someone from a receiving service in a youth's chat for a warm handover: one
    conversation per socket, from the moment they joined, while the consent holds."""

    frames = protocol.PARTNER_FRAMES
    kind = "partner"

    async def connect(self):
        self.conversation_id: str | None = None
        self.handover_id: str | None = None
        await super().connect()
        self.login = SocketLogin(self.scope)
        user = self.scope["user"]
        # Logged in, and verified with a two-factor code when that is required.
        self.partner = (
            await db(handover_selectors.partner_profile)(user) if self.login.allowed() else None
        )
        if self.partner is None:
            await self.send_error("unauthorized", _("Log in as a partner first."))
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.join(events.staff_user_group(user.id))  # auth.revoked closes this socket

    async def receive(self, text_data=None, bytes_data=None):
        if self.partner is None:
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    def target(self, frame) -> str:
        return self.conversation_id

    async def on_hello(self, frame: protocol.PartnerHello):
        user = self.scope["user"]
        handover, from_seq = await db(handover_services.handover_partner_join)(
            user=user, conversation_id=frame.conversation_id
        )
        self.actor = Actor.for_partner(user)
        self.conversation_id = str(handover.conversation_id)
        self.handover_id = str(handover.id)
        await self.join(partner_service_group(self.partner.service_id))
        conversation = await db(selectors.conversation_for)(self.actor, self.conversation_id)
        await self.send_frame(
            {
                "type": "welcome",
                "protocol": protocol.PROTOCOL_VERSION,
                "partner": {
                    "display_name": self.partner.display_name,
                    "service": await db(lambda: self.partner.service.name)(),
                },
                "conversation": selectors.conversation_summary(conversation),
                "handover_id": self.handover_id,
                "from_seq": from_seq,
                "limits": {"max_text": settings.YOUTHHUB_MAX_MESSAGE_CHARS},
            }
        )
        await self.follow(self.conversation_id, max(frame.last_seq or 0, from_seq))

    async def push(self, frame: dict):
        kind = frame["type"]
        if kind in STAFF_ONLY_FRAMES:
            return
        if kind == "handover.update":
            card = frame.get("handover") or {}
            if card.get("id") == self.handover_id and not card.get("visible", True):
                # The youth withdrew, the consent ran out, or the service declined: the
                # partner's view closes now, saying why.
                reason = card.get("reason", "closed")
                await self.send_frame(
                    {"type": "closed", "conversation_id": self.conversation_id, "reason": reason}
                )
                await self.close()
            return
        if kind == "passed" and (frame.get("partner") or {}).get("service_id") != (
            self.partner.service_id
        ):
            await self.send_frame(
                {"type": "closed", "conversation_id": self.conversation_id, "reason": CLOSED_PASSED}
            )
            await self.close()
            return
        await super().push(frame)
