"""The emergency numbers youth see on every screen, and the moment they say they are not safe."""

from django.utils.translation import gettext_lazy as _

# (number, what it is for, in plain words). Norway; free, open day and night unless noted.
CRISIS_LINES = [
    ("113", _("Life or health in danger right now – call an ambulance")),
    ("112", _("Police – if someone threatens you or others")),
    ("116 117", _("Out-of-hours doctor – when you need a doctor now and your GP is closed")),
    ("116 111", _("Helpline for children and young people – violence, abuse, neglect")),
    ("116 123", _("Mental Health helpline – to talk to someone, day and night")),
]


def crisis_info_frame() -> dict:
    return {
        "type": "crisis_info",
        "lines": [{"number": number, "text": str(text)} for number, text in CRISIS_LINES],
    }
