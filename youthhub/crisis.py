"""The emergency numbers youth see on every screen, and the moment they say they are not safe."""

# (number, what it is for, in plain words). Norway; free, open day and night unless noted.
CRISIS_LINES = [
    ("113", "Akutt fare for liv eller helse – ring ambulanse"),
    ("112", "Politi – hvis noen truer deg eller andre"),
    ("116 117", "Legevakt – når du trenger lege nå og fastlegen er stengt"),
    ("116 111", "Alarmtelefonen for barn og unge – vold, overgrep, omsorgssvikt"),
    ("116 123", "Mental Helse hjelpetelefon – for å snakke med noen, hele døgnet"),
]


def crisis_info_frame() -> dict:
    return {
        "type": "crisis_info",
        "lines": [{"number": number, "text": text} for number, text in CRISIS_LINES],
    }
