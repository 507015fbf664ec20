"""Translations: English msgids, bokmål by default, English by choice; catalogs complete and
compiled. No services needed: these run on both backends."""

import ast
import gettext
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "frontend" / "locale"
JS = ROOT / "frontend" / "static" / "youthhub" / "js"
LANGS = ("nb", "en")


# -- a tiny .po reader (no gettext tools needed) ----------------------------------------------


def read_po(path: Path) -> list[dict]:
    """Entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (list), flags, obsolete."""
    entries, entry, field = [], None, None

    def finish():
        if entry is not None and "msgid" in entry:
            entries.append(entry)

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            finish()
            entry, field = None, None
            continue
        if entry is None:
            entry = {"flags": set(), "msgstr": {}, "obsolete": False}
        if line.startswith("#~"):
            entry["obsolete"] = True
            continue
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$', line)
        if match:
            keyword, index, value = match.groups()
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(index or 0))
                entry["msgstr"][field[1]] = ast.literal_eval(value)
            else:
                field = (keyword, None)
                entry[keyword] = ast.literal_eval(value)
        else:  # a continuation line
            value = ast.literal_eval(line.strip())
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += value
            else:
                entry[field[0]] += value
    finish()
    return entries


def po_catalog(path: Path) -> dict:
    """What msgfmt would put in the .mo: translated, non-fuzzy entries, keyed as gettext does."""
    catalog = {}
    for e in read_po(path):
        if e["obsolete"] or not e["msgid"] or "fuzzy" in e["flags"]:
            continue
        if not all(e["msgstr"].values()):
            continue
        key = e["msgid"] if "msgctxt" not in e else f"{e['msgctxt']}\x04{e['msgid']}"
        if "msgid_plural" in e:
            for n, text in e["msgstr"].items():
                catalog[(key, n)] = text
        else:
            catalog[key] = e["msgstr"][0]
    return catalog


def mo_catalog(path: Path) -> dict:
    with path.open("rb") as f:
        catalog = dict(gettext.GNUTranslations(f)._catalog)
    catalog.pop("", None)  # the header
    return catalog


def test_every_bokmal_entry_is_translated_and_none_is_fuzzy():
    entries = [e for e in read_po(LOCALE / "nb" / "LC_MESSAGES" / "django.po") if e["msgid"]]
    assert len(entries) > 100
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"].values())]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    obsolete = [e["msgid"] for e in entries if e["obsolete"]]
    assert untranslated == [] and fuzzy == [] and obsolete == []


def test_translations_keep_their_placeholders():
    """`{name}` and `%(days)s` in a msgid must come back in the translation (JS fills them)."""
    placeholder = re.compile(r"\{\w+\}|%\(\w+\)s")
    for lang in LANGS:
        for e in read_po(LOCALE / lang / "LC_MESSAGES" / "django.po"):
            for text in e["msgstr"].values():
                if text:
                    assert sorted(placeholder.findall(text)) == sorted(
                        placeholder.findall(e["msgid"])
                    ), (lang, e["msgid"], text)


@pytest.mark.parametrize("lang", LANGS)
def test_committed_mo_files_are_up_to_date(lang):
    po = LOCALE / lang / "LC_MESSAGES" / "django.po"
    mo = LOCALE / lang / "LC_MESSAGES" / "django.mo"
    assert mo.exists(), f"run `make messages` to compile {po}"
    assert mo_catalog(mo) == po_catalog(po), f"{mo} is stale: run `make messages`"


@pytest.mark.parametrize("lang", LANGS)
def test_msgfmt_accepts_the_catalogs_and_compiles_the_same(lang, tmp_path):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("GNU gettext (msgfmt) is not installed")
    po = LOCALE / lang / "LC_MESSAGES" / "django.po"
    fresh = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check", "-o", str(fresh), str(po)], check=True)
    assert mo_catalog(fresh) == mo_catalog(LOCALE / lang / "LC_MESSAGES" / "django.mo")


# -- pages in both languages ------------------------------------------------------------------


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def page_strings(response) -> dict:
    block = re.search(
        r'<script id="strings" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    return json.loads(block.group(1))


@pytest.mark.django_db
def test_the_youth_page_is_in_bokmal_by_default_even_for_an_english_browser(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response.status_code == 200
    assert html_lang(response) == "nb" and response["Content-Language"] == "nb"
    text = response.content.decode()
    assert "Forlat siden" in text and "Om anonymitet" in text and "Jeg er ikke trygg nå" in text
    assert "Akutt fare for liv eller helse" in text  # CRISIS_LINES
    strings = page_strings(response)
    assert strings["queued"].startswith("Du er nummer {position} i køen")
    assert strings["roles"]["psychologist"] == "Psykolog"
    assert strings["interests"]["music"] == "Musikk"


@pytest.mark.django_db
def test_the_youth_page_is_in_english_with_the_language_cookie(client):
    client.cookies["django_language"] = "en"
    response = client.get("/")
    assert html_lang(response) == "en" and response["Content-Language"] == "en"
    text = response.content.decode()
    assert "Exit this page" in text and "About anonymity" in text
    assert "I am not safe right now" in text and "Forlat siden" not in text
    assert "Life or health in danger right now" in text
    strings = page_strings(response)
    assert strings["queued"].startswith("You are number {position} in the queue")
    assert strings["roles"]["psychologist"] == "Psychologist"
    assert strings["interests"]["music"] == "Music"


class _Forms(HTMLParser):
    """The language switcher's form: action, hidden fields and the buttons' values."""

    def __init__(self):
        super().__init__()
        self.form = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "lang-switch" in (attrs.get("class") or ""):
            self.form = {"action": attrs["action"], "fields": {}, "buttons": []}
        elif self.form is not None and tag == "input" and attrs.get("type") == "hidden":
            self.form["fields"].setdefault(attrs["name"], attrs["value"])
        elif self.form is not None and tag == "button" and attrs.get("name") == "language":
            self.form["buttons"].append(attrs["value"])


@pytest.mark.django_db
def test_the_switcher_posts_to_set_language_with_csrf_and_comes_back_in_english(arena):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/dropin/tonsberg/")
    parser = _Forms()
    parser.feed(page.content.decode())
    form = parser.form
    assert form["action"] == "/i18n/setlang/" and form["buttons"] == ["en"]
    assert form["fields"]["next"] == "/dropin/tonsberg/"
    assert "csrfmiddlewaretoken" in form["fields"]
    response = client.post(form["action"], {**form["fields"], "language": "en"})
    assert response.status_code == 302 and response["Location"] == "/dropin/tonsberg/"
    assert response.cookies["django_language"].value == "en"
    again = client.get("/dropin/tonsberg/")
    assert (
        html_lang(again) == "en" and "Who do you want to talk to today?" in again.content.decode()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("nb", ["Ta en lapp", "Første ledige", "Hvem vil du snakke med?"]),
        ("en", ["Take a ticket", "First available", "Who do you want to talk to?"]),
    ],
)
def test_the_kiosk_renders_in_both_languages(client, arena, lang, expected):
    client.cookies["django_language"] = lang
    response = client.get("/dropin/tonsberg/kiosk/")
    assert response.status_code == 200 and html_lang(response) == lang
    strings = page_strings(response)
    text = response.content.decode()
    assert strings["take"] == expected[0]
    assert expected[1] in text and expected[2] in text
    assert strings["roles"]["health_nurse"] == (
        "Helsesykepleier" if lang == "nb" else "School nurse"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lang", "take_next", "typing", "call"),
    [
        ("nb", "Ta neste", "{name} skriver …", "Rop opp {ticket}"),
        ("en", "Take next", "{name} is typing …", "Call {ticket}"),
    ],
)
def test_the_staff_dashboard_renders_in_both_languages(
    client, ingrid, lang, take_next, typing, call
):
    client.force_login(ingrid)
    client.cookies["django_language"] = lang
    response = client.get("/staff/")
    assert response.status_code == 200 and html_lang(response) == lang
    assert take_next in response.content.decode()
    strings = page_strings(response)
    assert strings["typing"] == typing and strings["call"] == call
    assert strings["asked_for_role"]["psychologist"]


@pytest.mark.django_db
def test_staff_pages_follow_the_browser_language_when_nothing_was_chosen(client):
    assert html_lang(client.get("/staff/login/")) == "nb"
    english = client.get("/staff/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert (
        html_lang(english) == "en" and "Log in for staff and partners" in english.content.decode()
    )


# -- every text the scripts show comes from the page ------------------------------------------

# Which page each script runs on, and which part of that page's strings (its json_script
# "strings" block) it is given: the key path from the top. Every script that reads translated
# strings is listed (the guard below), each on every page that loads it.
SCRIPT_STRINGS = {
    "youth.js": [("youth", ())],
    "consent.js": [("youth", ("consent",))],
    "waittext.js": [("youth", ()), ("kiosk", ())],
    "chatview.js": [("youth", ()), ("staff", ()), ("partner_chat", ())],
    "kiosk.js": [("kiosk", ())],
    "staff.js": [("staff", ())],
    "staffwork.js": [("staff", ("work",))],
    "staffhandover.js": [("staff", ("work", "handover"))],
    "partner.js": [("partner_chat", ())],
    "stats.js": [("stats", ())],
}
# How a script reads its part: `strings.x`, `this.strings.x`, or `this.s.x` (a class that keeps
# its part as `this.s`).
READS = re.compile(r"\bstrings\.(\w+)|\bthis\.s\.(\w+)")


def keys_read(script: str) -> set[str]:
    return {a or b for a, b in READS.findall((JS / script).read_text())}


def test_every_script_that_reads_strings_is_checked():
    reading = {path.name for path in JS.glob("*.js") if keys_read(path.name)}
    assert reading == set(SCRIPT_STRINGS)


def page_response(page: str, team, make_youth, make_staff):
    """The page, rendered for someone who may see it."""
    ingrid, _ = team
    client = Client()
    if page == "youth":
        return client.get("/")
    if page == "kiosk":
        return client.get("/dropin/tonsberg/kiosk/")
    if page == "staff":
        client.force_login(ingrid)
        return client.get("/staff/")
    if page == "stats":
        client.force_login(make_staff("mona", "social_worker", is_supervisor=True))
        return client.get("/supervisor/stats/")
    # A warm handover to BUP, consented: the partner's chat page.
    from tests.test_partner_pages import chatting, make_partner, send_handover
    from youthhub.handover.services import service_directory_seed

    service_directory_seed()
    conversation = chatting(make_youth, ingrid)
    send_handover(ingrid, conversation, reach="warm")
    client.force_login(make_partner("bup", "bup-vestfold", "Kari, BUP"))
    return client.get(f"/partner/chat/{conversation.id}/")


def loaded_scripts(html: str) -> set[str]:
    """The page's modules and, through their imports, every module they load."""
    todo = re.findall(r'<script[^>]* src="/static/youthhub/js/([\w.]+)"', html)
    loaded = set()
    while todo:
        name = todo.pop()
        if name not in loaded:
            loaded.add(name)
            todo += re.findall(r'^import .* from "\./([\w.]+)";$', (JS / name).read_text(), re.M)
    return loaded


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["youth", "kiosk", "staff", "stats", "partner_chat"])
def test_every_string_a_script_uses_is_in_the_page(team, make_youth, make_staff, page):
    response = page_response(page, team, make_youth, make_staff)
    assert response.status_code == 200
    strings = page_strings(response)
    expected = {script for script, uses in SCRIPT_STRINGS.items() for on, _ in uses if on == page}
    assert expected == loaded_scripts(response.content.decode()) & set(SCRIPT_STRINGS)
    for script, uses in SCRIPT_STRINGS.items():
        for key_path in (path for on, path in uses if on == page):
            part = strings
            for key in key_path:
                part = part[key]
            missing = keys_read(script) - set(part)
            assert not missing, f"{script} on {page} reads {sorted(missing)}, not in the page"


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["nb", "en"])
@pytest.mark.parametrize("path", ["/", "/dropin/tonsberg/", "/dropin/tonsberg/kiosk/"])
def test_every_youth_screen_has_the_crisis_numbers_one_tap_away(client, arena, lang, path):
    from django.utils import translation

    from youthhub.crisis import CRISIS_LINES

    client.cookies["django_language"] = lang
    text = client.get(path).content.decode()
    assert 'href="#crisis"' in text  # the link at the top of the screen
    section = re.search(r'<section id="crisis".*?</section>', text, re.S).group(0)
    with translation.override(lang):
        for number, label in CRISIS_LINES:
            assert f'href="tel:{number.replace(" ", "")}"' in section, number
            assert str(label) in section, label


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/dropin/tonsberg/", "/dropin/tonsberg/kiosk/", "/staff/", "/staff/login/"]
)
def test_no_page_has_an_inline_script(client, arena, ingrid, path):
    if path == "/staff/":
        client.force_login(ingrid)
    text = client.get(path).content.decode()
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    assert "javascript:" not in text
