"""The installable youth app: manifest, icons, service worker, quick-exit address. No services
needed (the browser side is in test_browser_youth.py)."""

import json
import re
import struct

import pytest
from django.contrib.staticfiles import finders

from frontend.views import SHELL_STATIC


@pytest.mark.django_db
def test_the_manifest_is_linked_and_names_the_app_neutrally(client):
    page = client.get("/").content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == manifest["short_name"] == "Ung chat"
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#1f5f8b" and manifest["background_color"] == "#f6f4ef"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512", "any"} <= sizes


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["nb", "en"])
@pytest.mark.parametrize("path", ["/", "/dropin/tonsberg/"])
def test_the_page_title_is_the_app_name_and_nothing_more(client, arena, lang, path):
    """What a glance at the phone's tabs or app switcher shows (docs/privacy.md)."""
    client.cookies["django_language"] = lang
    page = client.get(path).content.decode()
    assert re.search(r"<title>(.*?)</title>", page, re.S).group(1) == "Ung chat"


@pytest.mark.parametrize("size", [192, 512])
def test_the_png_icons_are_real_pngs_of_their_size(size):
    path = finders.find(f"youthhub/icons/icon-{size}.png")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (size, size)


@pytest.mark.django_db
def test_the_service_worker_is_served_from_the_root_and_caches_only_the_shell(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", body).group(1))
    assert shell[0] == "/" and not any(
        url.startswith(("/api/", "/ws/", "/staff/")) for url in shell
    )
    for name in SHELL_STATIC:
        assert finders.find(name), name  # cache.addAll fails on one missing file
    assert client.post("/sw.js").status_code == 405


@pytest.mark.django_db
def test_the_youth_page_is_never_stored_and_carries_the_quick_exit_address(client, settings):
    settings.YOUTHHUB_QUICK_EXIT_URL = "https://example.org/weather"
    response = client.get("/")
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert 'data-url="https://example.org/weather"' in page
    assert re.search(r'<a id="quick-exit"[^>]*href="https://example.org/weather"', page)


def test_the_shell_holds_every_module_the_youth_page_imports():
    """Offline start needs the whole import graph of youth.js in the worker's cache."""
    needed, todo = set(), ["youthhub/js/youth.js"]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        source = open(finders.find(name)).read()
        for module in re.findall(r'^import .* from "\./([\w.]+)";$', source, re.M):
            todo.append(f"youthhub/js/{module}")
    assert needed <= set(SHELL_STATIC), sorted(needed - set(SHELL_STATIC))
