"""The service directory, partner accounts, handovers, consents and anonymous consultations.
Data and invariants only (docs/handover.md).

A handover's summary, the youth's contact details and every free text about the youth
(decline reason, alternative offer, the youth's reason for a no) are stored only encrypted,
under the handover's own data key (`HandoverKey`): destroying that one key (withdrawal,
expiry, closing) makes all of it unreadable for good, while the row itself (service, state,
timestamps) stays for statistics.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from youthhub.keys import WrappedKey

# -------------------------------------------------------------------------------------------
# The directory


class ServiceKind(models.TextChoices):
    BUP = "bup", _("BUP (child and adolescent mental health)")
    DPS = "dps", _("DPS (adult mental health)")
    HELSESTASJON_UNGDOM = "helsestasjon_ungdom", _("Youth health clinic")
    SKOLEHELSE = "skolehelse", _("School health service")
    FASTLEGE = "fastlege", _("GP (fastlege)")
    KOMMUNAL_PSYKISK_HELSE = "kommunal_psykisk_helse", _("Municipal mental health service")
    RUS = "rus", _("Substance use service")
    BARNEVERN = "barnevern", _("Child welfare (barnevern)")
    NAV = "nav", _("NAV")
    PPT = "ppt", _("Educational psychology service (PPT)")
    OPPFOLGINGSTJENESTEN = "oppfolgingstjenesten", _("Oppfølgingstjenesten")
    BARNAS_JURIST = "barnas_jurist", _("Children's lawyer")
    UTEKONTAKT = "utekontakt", _("Outreach (utekontakt)")
    KONFLIKTRADET = "konfliktradet", _("Konfliktrådet (mediation)")
    ATV = "atv", _("Alternative to Violence (ATV)")
    LEGEVAKT = "legevakt", _("Out-of-hours clinic (legevakt)")
    OTHER = "other", _("Other")


class Access(models.TextChoices):
    """How a youth reaches the service on their own."""

    DROPIN = "dropin", _("Drop in")
    REFERRAL = "referral", _("Needs a referral")
    PHONE = "phone", _("Phone")
    DIGITAL = "digital", _("Online")


class Service(models.Model):
    """A service a youth may be handed to. Managed in the admin; seeded by
    services.service_directory_seed()."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=32, choices=ServiceKind.choices)
    offers = models.TextField(blank=True, help_text="What the service offers (for staff).")
    youth_description = models.TextField(
        blank=True,
        help_text="Plain words for youth, in bokmål: short and kind, no diagnosis words.",
    )
    age_min = models.PositiveSmallIntegerField(default=0)
    # Inclusive; blank: no upper limit.
    age_max = models.PositiveSmallIntegerField(null=True, blank=True)
    access = models.CharField(max_length=16, choices=Access.choices)
    referral_from = models.CharField(
        max_length=200,
        blank=True,
        help_text='Who may refer, e.g. "fastlege, psykolog eller barnevern".',
    )
    takes_digital_handovers = models.BooleanField(default=False)
    reply_days = models.PositiveSmallIntegerField(
        default=14, help_text="Expected reply time to a handover, in days."
    )
    phone = models.CharField(max_length=40, blank=True)
    area = models.CharField(
        max_length=80, blank=True, help_text='e.g. "Vestfold"; blank: everywhere.'
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(age_max__isnull=True) | Q(age_max__gte=models.F("age_min")),
                name="service_age_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PartnerProfile(models.Model):
    """What makes a user a partner: someone at one receiving service. A partner is never staff
    (services.partner_create_or_update refuses a user with a staff profile)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_profile"
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="partners")
    display_name = models.CharField(max_length=80)

    def __str__(self) -> str:
        return f"{self.display_name} ({self.service})"


# -------------------------------------------------------------------------------------------
# Handovers

# The structured summary, in the order a good referral reads (docs/handover.md). Every
# section that is shared is shown word for word to the youth too.
SUMMARY_SECTIONS = {
    "concern": _("The concern, in concrete words"),
    "own_words": _("The youth's own words and goals"),
    "tried": _("What has been tried"),
    "assessment": _("Our assessment"),
    "interim_plan": _("Plan for the wait"),
    "who_does_what": _("Who does what until the next contact"),
    "existing_plan": _("Existing plan or coordinator"),
}
# A handover cannot be proposed without these.
REQUIRED_SECTIONS = ("concern", "assessment", "interim_plan", "who_does_what")


class Reach(models.TextChoices):
    WARM = "warm", _("The service joins the chat")
    CONTACT = "contact", _("The service contacts the youth")
    CODE = "code", _("The youth shows a code at the service")


class AgeBand(models.TextChoices):
    UNDER_16 = "under_16", _("Under 16")
    SIXTEEN_PLUS = "16_plus", _("16 or older")


class Handover(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PROPOSED = "proposed", _("Proposed to the youth")
        CHANGES_REQUESTED = "changes_requested", _("Youth asked for changes")
        REFUSED = "refused", _("Youth said no")
        # Consent and sending are one step: the youth's yes sends it (docs/handover.md).
        SENT = "sent", _("Consented and sent")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined with an alternative")
        MET = "met", _("Met")
        WITHDRAWN = "withdrawn", _("Consent withdrawn")
        EXPIRED = "expired", _("Expired")
        CLOSED = "closed", _("Closed")

    # A youth has at most one of these per service.
    OPEN_STATES = ("draft", "proposed", "changes_requested", "sent", "accepted")
    # Staff may still edit the summary.
    EDITABLE_STATES = ("draft", "proposed", "changes_requested")
    # A partner of the service may read the summary (given a valid consent).
    PARTNER_STATES = ("sent", "accepted", "met")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The handover outlives the chat's retention.
    conversation = models.ForeignKey(
        "chat.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handovers",
    )
    youth = models.ForeignKey("chat.Youth", on_delete=models.CASCADE, related_name="handovers")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="handovers")
    named_person = models.CharField(max_length=80, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="handovers_created"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    reach = models.CharField(max_length=8, choices=Reach.choices)
    # Encrypted JSON {section: text} under the handover key; never plaintext.
    summary = models.BinaryField(null=True)
    # The sections staff propose to share (keys of SUMMARY_SECTIONS).
    scope = models.JSONField(default=list, blank=True)
    # reach=contact: what the youth left (encrypted), shown only to the accepting partner.
    contact = models.BinaryField(null=True, blank=True)
    # reach=code: a public selector and a slow hash of the secret part (shown once to the youth).
    code_selector = models.CharField(max_length=8, unique=True, null=True, blank=True)
    code_hash = models.CharField(max_length=200, blank=True)
    # The consent in force (the youth's last yes); earlier answers are in `consents`.
    # DO_NOTHING: a consent is only ever deleted together with its handover (both cascade
    # from the youth); nulling it first would break `sent_handover_has_consent` mid-delete.
    consent = models.ForeignKey(
        "Consent", on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    proposed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    reply_expected_by = models.DateTimeField(null=True, blank=True)
    overdue_flagged_at = models.DateTimeField(null=True, blank=True)
    # Warm handover: the chat's latest seq when the partner first joined. The partner sees the
    # conversation from there on, never what was said before (that is what the summary is for).
    partner_joined_seq = models.PositiveIntegerField(null=True, blank=True)
    # Who of the service joined (the youth is told "Kari from BUP continues" by this name).
    partner_joined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The staff member passed the live chat to the service (services.handover_chat_pass):
    # the conversation stays active, led by this handover (chat.Conversation.led_by).
    chat_passed_at = models.DateTimeField(null=True, blank=True)
    # The chat's latest seq at the pass: staff who read the conversation later (continuity)
    # see it up to here, never what the youth said to the partner after they left.
    chat_passed_seq = models.PositiveIntegerField(null=True, blank=True)
    chat_passed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The partner's answer.
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handovers_answered",
    )
    first_meeting_at = models.DateTimeField(null=True, blank=True)
    meeting_where = models.CharField(max_length=120, blank=True)
    meeting_who = models.CharField(max_length=80, blank=True)
    decline_reason = models.BinaryField(null=True, blank=True)  # encrypted
    alternative = models.BinaryField(null=True, blank=True)  # encrypted
    alternative_service = models.ForeignKey(
        Service, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    met_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["youth", "service"],
                condition=Q(
                    state__in=["draft", "proposed", "changes_requested", "sent", "accepted"]
                ),
                name="one_open_handover_per_youth_and_service",
            ),
            # "Cannot be closed without an alternative offer": a decline always carries one.
            models.CheckConstraint(
                condition=~Q(state="declined")
                | (Q(alternative__isnull=False) & Q(decline_reason__isnull=False)),
                name="declined_handover_has_alternative",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["accepted", "met"]) | Q(first_meeting_at__isnull=False),
                name="accepted_handover_has_meeting",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["sent", "accepted", "declined", "met"])
                | Q(consent__isnull=False),
                name="sent_handover_has_consent",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "reply_expected_by"]),
            models.Index(fields=["service", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.service} ({self.state})"


class HandoverKey(WrappedKey):
    """The handover's data key, wrapped by a master key. Destroying it deletes the summary,
    the contact details and every free text of the handover and its consents."""

    handover = models.OneToOneField(
        Handover, on_delete=models.CASCADE, primary_key=True, related_name="key"
    )

    def context(self) -> str:
        return f"handover:{self.handover_id}"


class Consent(models.Model):
    """One recorded answer of the youth to one proposed handover: per service, per named
    person, with the sections shared, the topics excepted and the wording shown."""

    class Answer(models.TextChoices):
        AGREE = "agree", _("Yes")
        AGREE_EXCEPT = "agree_except", _("Yes, except some things")
        CHANGE = "change", _("Change something first")
        NO = "no", _("No")

    AGREEING = ("agree", "agree_except")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    handover = models.ForeignKey(Handover, on_delete=models.CASCADE, related_name="consents")
    youth = models.ForeignKey("chat.Youth", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    named_person = models.CharField(max_length=80, blank=True)
    # Section keys proposed for sharing when the youth answered.
    scope = models.JSONField(default=list, blank=True)
    # What the youth excepted: section keys and/or topic keys (chat.models.TOPICS).
    exceptions = models.JSONField(default=list, blank=True)
    # Which wording the youth was shown (e.g. a hash of the rendered consent text).
    text_version = models.CharField(max_length=64)
    age_band = models.CharField(max_length=8, choices=AgeBand.choices, blank=True)
    answer = models.CharField(max_length=12, choices=Answer.choices)
    # The youth's optional reason for a no / change: encrypted under the handover key.
    reason = models.BinaryField(null=True, blank=True)
    given_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["given_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(answer__in=["agree", "agree_except"])
                | (Q(expires_at__isnull=False) & ~Q(age_band="")),
                name="agreeing_consent_has_expiry_and_age_band",
            ),
        ]

    @property
    def agreed(self) -> bool:
        return self.answer in self.AGREEING


# -------------------------------------------------------------------------------------------
# Anonymous consultation (Asker's pattern)


class Consultation(WrappedKey):
    """Staff ask a service a question without naming anyone: no link to a youth or a
    conversation. Question and answer are encrypted under the consultation's own data key,
    which is its own row (a WrappedKey: re-wrapped by `manage.py rewrap_keys`; the row is
    deleted by retention, youthhub/retention.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="consultations")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consultations_asked"
    )
    question = models.BinaryField()
    answer = models.BinaryField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="consultations_answered",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def context(self) -> str:
        return f"consultation:{self.id}"
