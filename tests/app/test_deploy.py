"""contrib/feedmill.service checked by systemd-analyze; the Dockerfile copies what the package
needs (CI cannot build images, so this is what can be checked here)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from feedmill.config import ServerSettings
from tests.conftest import ROOT
from tests.debian import debian_command

UNIT = ROOT / "contrib" / "feedmill.service"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = debian_command("systemd-analyze", "systemd")
    text = UNIT.read_text(encoding="utf-8")
    # verify wants ExecStart's program to exist: point it at this checkout's feedmill
    here = str(Path(sys.executable).parent / "feedmill")
    unit = tmp_path / "feedmill.service"
    unit.write_text(text.replace("/opt/feedmill/bin/feedmill", here), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")
    # exposure 0 (locked down) to 10 (unsafe); the threshold is in tenths
    scored = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=30", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert scored.returncode == 0, scored.stdout[-500:]


def test_the_unit_is_hardened_and_stops_in_time() -> None:
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    for key, value in {
        "Type": "notify",
        "User": "feedmill",
        "StateDirectory": "feedmill",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "true",
        "Restart": "on-failure",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert settings.get(key) == value, key
    stop = int(settings["TimeoutStopSec"])
    assert stop > ServerSettings().shutdown_timeout.total_seconds() + 5


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = {
        name
        for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
        for name in line.split()
    }
    for name in copied:
        assert (ROOT / name).exists(), name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    assert packages <= copied
    assert re.search(r"^USER feedmill$", dockerfile, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*/healthz", dockerfile, re.MULTILINE | re.DOTALL)
