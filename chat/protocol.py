"""WebSocket protocol v1: client frame types and their validation, in one place.

`parse(raw)` turns a text frame into a typed frame or raises ProtocolError with a stable
code. docs/protocol.md is the human-readable spec of the same types.
"""

import json
from typing import Annotated, Literal

import msgspec

from .errors import ServiceError

PROTOCOL_VERSION = 1

ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ConversationId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
# Ids of rows (staff users, services) fit a 32-bit integer column on every backend.
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
# The length limit on text is a product rule (services.message_send, error `too_long`);
# this bound only keeps absurd frames out of the parser.
Text = Annotated[str, msgspec.Meta(max_length=100_000)]
Token = Annotated[str, msgspec.Meta(max_length=256)]


class Frame(msgspec.Struct, forbid_unknown_fields=True):
    type: str


class YouthHello(Frame):
    token: Token
    # Highest seq the client has seen, and of which conversation (ignored for another one).
    conversation_id: ConversationId | None = None
    last_seq: Seq | None = None


class StaffHello(Frame):
    # Highest seq seen per conversation id.
    last_seq: dict[ConversationId, Seq] = {}


Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"^[-a-z0-9_]+$")]
Topic = Annotated[str, msgspec.Meta(max_length=16)]  # one of chat.models.TOPICS (bad_topic)
Room = Annotated[str, msgspec.Meta(max_length=40)]


# "any" | {"staff": id} | {"role": name}; checked further by dropin.services (bad_target).
Target = (
    Literal["any"]
    | Annotated[
        dict[
            Annotated[str, msgspec.Meta(max_length=16)],
            RowId | Annotated[str, msgspec.Meta(max_length=32)],
        ],
        msgspec.Meta(min_length=1, max_length=1),
    ]
)


class Request(Frame):
    target: Target = "any"
    topic: Topic | None = None
    site: Slug | None = None  # an arena's slug: a drop-in ticket there; else the chat
    pool: Slug | None = None  # which regional chat (default: YOUTHHUB_DEFAULT_POOL)


class Change(Frame):
    target: Target
    topic: Topic | None = None


class Crisis(Frame):
    pass


class YouthMessage(Frame):
    client_id: ClientId
    text: Text


class StaffMessage(Frame):
    conversation_id: ConversationId
    client_id: ClientId
    text: Text


class YouthTyping(Frame):
    active: bool


class StaffTyping(Frame):
    conversation_id: ConversationId
    active: bool


class YouthRead(Frame):
    seq: Seq


class StaffRead(Frame):
    conversation_id: ConversationId
    seq: Seq


class YouthSync(Frame):
    after_seq: Seq = 0


class StaffSync(Frame):
    conversation_id: ConversationId
    after_seq: Seq = 0


class YouthEnd(Frame):
    pass


Tag = Annotated[str, msgspec.Meta(max_length=16)]  # one of chat.models.STAFF_TAGS (bad_tags)


class StaffEnd(Frame):
    conversation_id: ConversationId
    tags: Annotated[list[Tag], msgspec.Meta(max_length=10)] = []
    triage: Literal["green", "yellow", "red"] | None = None
    feedback: bool = False  # ask the youth for feedback


class StaffNote(Frame):
    conversation_id: ConversationId
    client_id: ClientId
    text: Text


class TransferOffer(Frame):
    conversation_id: ConversationId
    target: Target  # {"staff": id} | {"role": name}
    note: Text


class TransferAction(Frame):
    transfer_id: ConversationId


class Earlier(Frame):
    conversation_id: ConversationId  # the current conversation
    earlier_id: ConversationId


class Capacity(Frame):
    capacity: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]  # 1–10: bad_capacity


class Shift(Frame):
    pass


Score = Annotated[int, msgspec.Meta(ge=0, le=5)]


ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Key = Annotated[str, msgspec.Meta(max_length=32)]


HandoverSummary = Annotated[
    dict[Key, Annotated[str, msgspec.Meta(max_length=4000)]], msgspec.Meta(max_length=10)
]


class HandoverPropose(Frame):
    """Draft and show to the youth in one step (youthhub.handover: handover_draft + propose)."""

    conversation_id: ConversationId
    service: RowId | Annotated[str, msgspec.Meta(max_length=50)]
    reach: Literal["warm", "contact", "code"]
    summary: HandoverSummary
    named_person: ShortText = ""
    scope: Annotated[list[Key], msgspec.Meta(max_length=10)] | None = None


class HandoverRevise(Frame):
    """Replace what the youth is asked about after they asked for changes (or before they
    answered), and ask again (youthhub.handover: handover_revise). The service stays."""

    handover_id: ConversationId
    reach: Literal["warm", "contact", "code"]
    summary: HandoverSummary
    named_person: ShortText = ""
    scope: Annotated[list[Key], msgspec.Meta(max_length=10)] | None = None


class HandoverAction(Frame):
    handover_id: ConversationId


class ConsultationAsk(Frame):
    service: RowId | Annotated[str, msgspec.Meta(max_length=50)]
    question: Annotated[str, msgspec.Meta(max_length=4000)]


class Consultations(Frame):
    pass


class ConsentAnswer(Frame):
    handover_id: ConversationId
    service: RowId | Annotated[str, msgspec.Meta(max_length=50)]
    answer: Literal["agree", "agree_except", "change", "no"]
    text_version: Annotated[str, msgspec.Meta(max_length=64)]
    age_band: Literal["under_16", "16_plus"] | None = None
    exceptions: Annotated[list[Key], msgspec.Meta(max_length=20)] = []
    # The same limits as youthhub.handover.services (REASON_MAX, CONTACT_MAX) and the page.
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    contact: Annotated[str, msgspec.Meta(max_length=500)] = ""


class PartnerHello(Frame):
    conversation_id: ConversationId
    last_seq: Seq | None = None


class YouthFeedback(Frame):
    conversation_id: ConversationId
    scores: Annotated[
        dict[Annotated[str, msgspec.Meta(max_length=16)], Score | None],
        msgspec.Meta(max_length=4),
    ] = {}
    text: Annotated[str, msgspec.Meta(max_length=5000)] = ""


AboutAnswer = Annotated[str, msgspec.Meta(max_length=16)] | None  # checked by about_give


class YouthAbout(Frame):
    """The optional questions (chat.models.ABOUT_QUESTIONS); each may be skipped (null)."""

    conversation_id: ConversationId
    age: AboutAnswer = None
    gender: AboutAnswer = None
    heard: AboutAnswer = None


class Accept(Frame):
    conversation_id: ConversationId
    room: Room | None = None


class ClaimNext(Frame):
    room: Room | None = None


class StaffStatus(Frame):
    status: Literal["available", "busy", "away", "offline"]


class Arrived(Frame):
    conversation_id: ConversationId


class NoShow(Frame):
    conversation_id: ConversationId


class Ping(Frame):
    pass


class BlockYouth(Frame):
    """Block the anonymous identity behind a conversation for a while (chat.services)."""

    conversation_id: ConversationId
    duration: Annotated[str, msgspec.Meta(max_length=8)]  # one of BLOCK_DURATIONS: bad_duration
    reason: Annotated[str, msgspec.Meta(max_length=16)] = ""  # BLOCK_REASONS: bad_block_reason


class Unblock(Frame):
    block_id: ConversationId


YOUTH_FRAMES: dict[str, type[Frame]] = {
    "hello": YouthHello,
    "request": Request,
    "change": Change,
    "crisis": Crisis,
    "message": YouthMessage,
    "typing": YouthTyping,
    "read": YouthRead,
    "sync": YouthSync,
    "end": YouthEnd,
    "feedback": YouthFeedback,
    "about": YouthAbout,
    "consent": ConsentAnswer,
    "consent_withdraw": HandoverAction,
    "ping": Ping,
}

STAFF_FRAMES: dict[str, type[Frame]] = {
    "hello": StaffHello,
    "accept": Accept,
    "claim_next": ClaimNext,
    "status": StaffStatus,
    "arrived": Arrived,
    "no_show": NoShow,
    "message": StaffMessage,
    "typing": StaffTyping,
    "read": StaffRead,
    "sync": StaffSync,
    "end": StaffEnd,
    "note": StaffNote,
    "transfer": TransferOffer,
    "transfer_preview": TransferAction,
    "transfer_accept": TransferAction,
    "transfer_decline": TransferAction,
    "transfer_cancel": TransferAction,
    "earlier": Earlier,
    "capacity": Capacity,
    "shift": Shift,
    "handover_propose": HandoverPropose,
    "handover_revise": HandoverRevise,
    "handover_close": HandoverAction,
    "handover_pass": HandoverAction,
    "consultation_ask": ConsultationAsk,
    "consultations": Consultations,
    "block": BlockYouth,
    "unblock": Unblock,
    "ping": Ping,
}

# A partner's socket: one conversation (a warm handover), like a youth's. `read` and `end`
# count once the staff member passed the chat to the partner (handover_pass).
PARTNER_FRAMES: dict[str, type[Frame]] = {
    "hello": PartnerHello,
    "message": YouthMessage,
    "typing": YouthTyping,
    "read": YouthRead,
    "sync": YouthSync,
    "end": YouthEnd,
    "ping": Ping,
}


class ProtocolError(ServiceError):
    pass


def _bad_text(data) -> str | None:
    """Why a decoded frame holds text nothing could store, or None. JSON can spell a lone
    surrogate ("\\ud800", not Unicode at all) and a NUL ("\\u0000", which PostgreSQL text
    refuses): both are refused here, for every key and value, before any service sees them."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "The frame contains a NUL character."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "The frame contains text that is not valid Unicode."
    return None


def parse(raw: str, registry: dict[str, type[Frame]]) -> Frame:
    """Validate one client text frame against `registry` (YOUTH_FRAMES or STAFF_FRAMES)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_frame", "A frame must be a JSON object.")
    problem = _bad_text(data)
    if problem:
        raise ProtocolError("bad_frame", problem)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", 'A frame needs a "type" string.')
    frame_type = registry.get(kind)
    if frame_type is None:
        raise ProtocolError("unknown_type", f"Unknown frame type {kind[:40]!r}.")
    try:
        return msgspec.convert(data, frame_type)
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad_frame", f"Invalid {kind} frame: {exc}") from None
