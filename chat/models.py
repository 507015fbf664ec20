"""Anonymous youth, their conversations and messages. Data and invariants only.

Nothing here identifies a young person: no IP address, no user agent, no name. The token
and return code are stored only as hashes; message bodies only encrypted (youthhub.crypto).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from youthhub.keys import WrappedKey

# What a youth may say the chat is about, before it starts (shown to staff in the queue).
TOPICS = {
    "school": _("School and work"),
    "family": _("Family"),
    "friends": _("Friends and love"),
    "feelings": _("Feelings and thoughts"),
    "body": _("Body and health"),
    "substances": _("Alcohol and drugs"),
    "other": _("Something else"),
}

# How staff tag a conversation when they end it: staff-only, never shown to youth.
STAFF_TAGS = {
    "stress": _("Stress/worry"),
    "low_mood": _("Low mood"),
    "school_work": _("School/work"),
    "family": _("Family"),
    "friends": _("Friends"),
    "substances": _("Substance use"),
    "body_sexual": _("Body/sexual health"),
    "violence": _("Violence/abuse"),
    "self_harm": _("Self-harm"),
    "other": _("Other"),
}

# Optional, anonymous questions a youth may answer once per conversation, while it is open
# (the page asks while they wait). The answers are never stored with the youth or the conversation: they
# become counts in the statistics at once (`stats.Count`, per pool and day), and nothing on
# the conversation says it was answered (chat.services.about_give). Fixed lists, never free
# text.
ABOUT_QUESTIONS = {
    "age": {
        "12_15": _("12–15"),
        "16_17": _("16–17"),
        "18_20": _("18–20"),
        "21_25": _("21–25"),
    },
    "gender": {
        "girl": _("Girl"),
        "boy": _("Boy"),
        "other": _("Other"),
        "not_say": _("Rather not say"),
    },
    "heard": {
        "school": _("At school"),
        "friend": _("From a friend"),
        "social_media": _("Social media"),
        "health_nurse": _("The school or youth health nurse"),
        "other": _("Somewhere else"),
    },
}


class Triage(models.TextChoices):
    """Staff's own judgement of how serious it was; never shown to youth."""

    GREEN = "green", _("Green")
    YELLOW = "yellow", _("Yellow")
    RED = "red", _("Red")


class Youth(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alias = models.CharField(max_length=40)
    # SHA-256 of the bearer token (the token has 256 bits of entropy, so a fast hash is enough).
    token_hash = models.CharField(max_length=64, unique=True)
    # Return code = public selector + secret; the secret is stored as a slow scrypt hash.
    return_code_selector = models.CharField(max_length=8, unique=True, null=True, blank=True)
    return_code_hash = models.CharField(max_length=200, blank=True)
    return_code_failures = models.PositiveSmallIntegerField(default=0)
    return_code_locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Coarse (updated at most hourly); used to delete stale identities.
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "youth"

    def __str__(self) -> str:
        return self.alias


class Conversation(models.Model):
    class Channel(models.TextChoices):
        CHAT = "chat", "Chat"
        DROPIN = "dropin", "Drop-in"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        ABANDONED = "abandoned", "Abandoned"
        NO_SHOW = "no_show", "No-show"  # a called drop-in ticket nobody came for

    OPEN_STATES = (State.QUEUED, State.ACTIVE)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    youth = models.ForeignKey(Youth, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.CHAT)
    # Routing: a chat goes to a regional pool, a drop-in ticket to one arena (site).
    # Both null only on an installation without any pool ("unrouted": every staff member).
    pool = models.ForeignKey("dropin.Pool", on_delete=models.PROTECT, null=True, blank=True)
    site = models.ForeignKey("dropin.Site", on_delete=models.PROTECT, null=True, blank=True)
    # Whom the youth asked for: a named person, a role, or neither ("first available").
    requested_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="requested_conversations",
    )
    requested_role = models.CharField(max_length=32, blank=True)
    # When the current choice was made (a request, or a later `change`): the named-person
    # switch offer counts from here, the place in the queue from `created_at`.
    chosen_at = models.DateTimeField(null=True, blank=True)
    # One of TOPICS, picked from a list: never free text, so nothing identifying is kept in clear.
    topic = models.CharField(max_length=16, blank=True)
    crisis = models.BooleanField(default=False)
    crisis_at = models.DateTimeField(null=True, blank=True)
    # When the youth was offered to switch from a named person who has not answered.
    switch_offered_at = models.DateTimeField(null=True, blank=True)
    # Asked while nobody was on (a message left for when staff open).
    after_hours = models.BooleanField(default=False)
    # Drop-in: the ticket ("B-17"), the room it is called to, and whether the youth came.
    ticket = models.CharField(max_length=8, blank=True)
    room = models.CharField(max_length=40, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    assigned_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_conversations",
    )
    # A warm handover's partner leads the chat (youthhub.handover.services.handover_chat_pass):
    # the staff member let go (assigned_staff is null from then on) and the service's partner
    # continues. DO_NOTHING: a handover is only ever deleted together with its conversation
    # (both cascade from the youth); nulling it first could break the constraint below.
    led_by = models.ForeignKey(
        "handover.Handover",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The seq the next message gets; only changed under select_for_update.
    next_seq = models.PositiveIntegerField(default=1)
    youth_read_seq = models.PositiveIntegerField(default=0)
    staff_read_seq = models.PositiveIntegerField(default=0)
    # Set by staff when they end it (staff-only): keys of STAFF_TAGS and a Triage colour.
    tags = models.JSONField(default=list, blank=True)
    triage = models.CharField(max_length=8, choices=Triage.choices, blank=True)
    # Whether staff asked the youth for feedback when ending.
    feedback_requested = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["youth"],
                condition=Q(state__in=["queued", "active"]),
                name="one_open_conversation_per_youth",
            ),
            # Someone answers an active chat: its staff member, or the partner it was passed to.
            models.CheckConstraint(
                condition=~Q(state="active")
                | Q(assigned_staff__isnull=False)
                | Q(led_by__isnull=False),
                name="active_conversation_has_a_helper",
            ),
            # Passed to a partner, the staff member has let go: never both at once.
            models.CheckConstraint(
                condition=Q(assigned_staff__isnull=True) | Q(led_by__isnull=True),
                name="partner_led_conversation_has_no_staff",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            models.Index(fields=["assigned_staff", "state"]),
        ]

    @property
    def latest_seq(self) -> int:
        return self.next_seq - 1

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def partner_led(self) -> bool:
        """Passed to a warm handover's partner. For a partner let in by
        selectors.conversation_for this means passed to *their* service: once passed to one,
        no other service's partner is let in (handover.selectors.partner_joinable)."""
        return self.led_by_id is not None

    @property
    def target(self):
        """The youth's choice as the protocol writes it."""
        if self.requested_staff_id:
            return {"staff": self.requested_staff_id}
        if self.requested_role:
            return {"role": self.requested_role}
        return "any"


class ConversationKey(WrappedKey):
    """The conversation's data key, wrapped by a master key. Deleting it deletes the content."""

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, primary_key=True, related_name="key"
    )

    def context(self) -> str:
        return str(self.conversation_id)


class Message(models.Model):
    class Sender(models.TextChoices):
        YOUTH = "youth", "Youth"
        STAFF = "staff", "Staff"
        PARTNER = "partner", "Partner"  # someone from the receiving service, in a warm handover

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=8, choices=Sender.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    body = models.BinaryField()  # AES-GCM under the conversation's data key, never plaintext
    client_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_id"], name="message_client_id_unique"
            ),
        ]


class Note(models.Model):
    """An internal note on a conversation: staff only, never sent to the youth, encrypted
    under the conversation's data key (so retention destroys it with the messages)."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        TRANSFER = "transfer", "Transfer note"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.NOTE)
    body = models.BinaryField()
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "author", "client_id"],
                condition=~Q(client_id=""),
                name="note_client_id_unique",
            ),
        ]


class Transfer(models.Model):
    """A request to hand an active conversation to a colleague or a role. The sender stays
    assigned (and the youth is never alone) until someone accepts."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transfers"
    )
    from_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers_sent"
    )
    to_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transfers_received",
    )
    to_role = models.CharField(max_length=32, blank=True)
    note = models.ForeignKey(Note, on_delete=models.SET_NULL, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(state="pending"),
                name="one_pending_transfer_per_conversation",
            ),
            models.CheckConstraint(
                condition=Q(to_staff__isnull=False) | ~Q(to_role=""),
                name="transfer_has_a_target",
            ),
        ]


class Feedback(models.Model):
    """The youth's answers after a chat: four statements on 0–5 (as in the family-meeting
    evaluation, Møreforsking 2016) and optional free text, encrypted like messages."""

    STATEMENTS = ("understood", "talked_about", "form", "useful")

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="feedback"
    )
    understood = models.PositiveSmallIntegerField(null=True, blank=True)
    talked_about = models.PositiveSmallIntegerField(null=True, blank=True)
    form = models.PositiveSmallIntegerField(null=True, blank=True)
    useful = models.PositiveSmallIntegerField(null=True, blank=True)
    text = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


# Why staff blocked an anonymous identity: chosen from this list (staff-only), never free text,
# so a block stores nothing anyone wrote.
BLOCK_REASONS = {
    "abuse": _("Abusive or threatening language"),
    "sexual": _("Sexual harassment"),
    "spam": _("Spam or flooding"),
    "prank": _("Pranks, not looking for help"),
    "other": _("Other"),
}

# How long a block lasts: one of these, nothing else (bounded: at most a week).
BLOCK_DURATIONS = {
    "1h": 1,
    "24h": 24,
    "7d": 7 * 24,
}


class Block(models.Model):
    """A staff member's pause on an anonymous identity: until `until`, the youth behind the
    token can neither start a request nor send a message. At most one per identity; deleted
    with the identity (CASCADE), when lifted, and by the purge once it has expired. It holds
    no text: a reason key from BLOCK_REASONS."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    youth = models.OneToOneField(Youth, on_delete=models.CASCADE, related_name="block")
    # The conversation it was placed from (for the staff's card and the audit log).
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=16, blank=True, choices=list(BLOCK_REASONS.items()))
    created_at = models.DateTimeField(auto_now_add=True)
    until = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"block until {self.until:%Y-%m-%d %H:%M}"

    def active(self, now) -> bool:
        return self.until > now
