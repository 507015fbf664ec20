"""Publishing handover frames (through chat.events, the only code touching the channel layer).

Groups: the youth's `youth.<uuid>`, each involved staff member's `staffuser.<id>`, and
`partner.<service id>` (every socket of a partner of that service). Frames are built after
the commit from committed state (chat.events.publish_many_on_commit), so nobody is told about
a write that was rolled back. Partner frames never carry the summary or contact details: a
partner reads those with an audited read (selectors.handover_for_partner).
"""

from django.conf import settings
from django.utils import timezone, translation

from chat import events as chat_events


def partner_service_group(service_id) -> str:
    return f"partner.{int(service_id)}"


def publish_handover(
    handover_id, *, consent_request: bool = False, also_staff: tuple[int, ...] = ()
) -> None:
    """After the commit, tell everyone involved about the handover's new state:

    - the youth (unless it is a draft they never saw): `consent.request` when it was just
      proposed, else `handover.update`; built in bokmål (the socket may re-read it in its own
      language with selectors.handover_for_youth);
    - the sender and the conversation's assigned staff member: `handover.update` with the
      card and its texts; `also_staff` (supervisors, when flagged overdue): the card only;
    - once it was ever sent, the service's partners: `handover.update` with the inbox card,
      or `{id, state, visible: false, reason}` when they may no longer see it.
    """

    def build() -> list[tuple[str, dict]]:
        from . import selectors

        handover = selectors.handover_with_relations(handover_id)
        now = timezone.now()
        items: list[tuple[str, dict]] = []
        if selectors.youth_may_see(handover):
            with translation.override(settings.LANGUAGE_CODE):
                view = selectors.youth_view(handover, now=now)
            kind = "consent.request" if consent_request else "handover.update"
            items.append(
                (chat_events.youth_group(handover.youth_id), selectors.frame(kind, handover=view))
            )
        # The responsible staff get the card with its short texts (the youth's reason, the
        # decline and its alternative); supervisors told of an overdue one get it without.
        responsible = selectors.staff_to_tell(handover)
        with_texts = selectors.staff_card(handover, now=now, texts=True)
        # Without texts only when someone else is told (no key unwrapped for nothing).
        others = [user_id for user_id in also_staff if user_id not in responsible]
        without = selectors.staff_card(handover, now=now) if others else None
        for user_id in responsible + others:
            card = with_texts if user_id in responsible else without
            items.append(
                (
                    chat_events.staff_user_group(user_id),
                    selectors.frame("handover.update", handover=card),
                )
            )
        if handover.sent_at is not None:
            items.append(
                (
                    partner_service_group(handover.service_id),
                    selectors.frame(
                        "handover.update", handover=selectors.partner_card(handover, now=now)
                    ),
                )
            )
        return items

    chat_events.publish_many_on_commit(build)


def publish_consultation(consultation_id) -> None:
    """After the commit: the service's partners and the asking staff member get
    `consultation.update` (metadata only; the text is read with selectors)."""

    def build() -> list[tuple[str, dict]]:
        from . import selectors
        from .models import Consultation

        consultation = Consultation.objects.select_related("service").get(id=consultation_id)
        card = selectors.consultation_card(consultation)
        frame = selectors.frame("consultation.update", consultation=card)
        return [
            (partner_service_group(consultation.service_id), frame),
            (chat_events.staff_user_group(consultation.asked_by_id), frame),
        ]

    chat_events.publish_many_on_commit(build)
