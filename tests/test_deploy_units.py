"""The systemd units in deploy/ parse cleanly: `systemd-analyze verify` on each, with the
host paths (/srv/youthhub) pointed at this checkout so the commands it checks exist."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted(
    p
    for p in ROOT.glob("deploy/**/*")
    if p.suffix in (".service", ".timer", ".target", ".socket") and p.is_file()
)


def test_there_are_units_to_check():
    names = {p.name for p in UNITS}
    assert {"youthhub@.service", "youthhub-prepare.service", "youthhub.target"} <= names
    assert {"youthhub-purge.service", "youthhub-purge.timer"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    text = unit.read_text()
    text = text.replace("/srv/youthhub/.venv/bin/python", sys.executable)
    text = text.replace("/srv/youthhub", str(ROOT))
    name = unit.name.replace("@.", "@8001.")  # a template is verified as one instance
    copy = tmp_path / name
    copy.write_text(text)
    for other in UNITS:  # units it names (Requires=, After= ...) are found next to it
        if other != unit:
            (tmp_path / other.name.replace("@.", "@8001.")).write_text(
                other.read_text().replace("/srv/youthhub", str(ROOT))
            )
    done = subprocess.run(
        [analyze, "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    said = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # The machine running the tests has no youthhub user and no /etc/youthhub.
        if line.strip() and "youthhub.env" not in line
    ]
    assert done.returncode == 0 and not said, "\n".join(said)
