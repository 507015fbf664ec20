"""Every ES module of the frontend parses (a syntax error silently kills a whole page).

Uses the machine's Node.js (`node --check`); the browser tests cover behaviour."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = sorted((Path(__file__).resolve().parent.parent / "frontend" / "static").rglob("*.js"))


def node_check(source: str, kind: str = "module") -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("YOUTHHUB_REQUIRE_SERVICES") == "1":
            pytest.fail("node is missing (apt-get install nodejs)")
        pytest.skip("node is missing")
    result = subprocess.run(
        [node, "--check", f"--input-type={kind}"],
        input=source,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", JS, ids=[p.name for p in JS])
def test_the_script_parses(path):
    node_check(path.read_text())


def test_the_service_worker_as_served_parses(client):
    # A Django template (frontend/templates/frontend/sw.js): check what the server sends.
    response = client.get("/sw.js")
    assert response.status_code == 200
    node_check(response.content.decode(), kind="commonjs")
