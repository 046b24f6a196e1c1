"""The service units in packaging/systemd/ and the desktop entry pass systemd's and freedesktop's checks.

``systemd-analyze verify`` runs against a throwaway root holding the units, the system's own unit
files and a stand-in ``/opt/genba/bin/genba`` (verify refuses an ExecStart that is not executable);
a warning (an unknown key, a bad value) fails the test as an error would. ``systemd-analyze
security --offline=true`` scores each unit's sandbox: the agent's must stay "OK" (≤ 3.0).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
UNITS = ("genba-agent.service", "genba-join.service", "genba-server.service")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
#: The exposure systemd-analyze gave each unit (systemd 252) when this was written; lower is better.
EXPOSURE_LIMITS = {"genba-agent.service": 3.0, "genba-join.service": 3.0, "genba-server.service": 3.0}

systemd_analyze = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    systemd_analyze is None, reason="systemd-analyze is not installed (Debian: the systemd package)"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    genba = root / "opt/genba/bin/genba"
    genba.parent.mkdir(parents=True)
    genba.write_text("#!/bin/sh\nexit 0\n")
    genba.chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(PACKAGING / "systemd" / unit, units / unit)
    dropins = units / "genba-agent.service.d"
    dropins.mkdir()
    shutil.copy(PACKAGING / "systemd/genba-agent.service.d/gpu.conf.example", dropins / "gpu.conf")
    if SYSTEM_UNITS.is_dir():  # sysinit.target and friends, which every service depends on
        shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    return root


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies_without_a_warning(root: Path, unit: str) -> None:
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"{SYSTEM_UNITS} is missing: systemd-analyze verify needs the system's units")
    assert systemd_analyze is not None
    done = subprocess.run(
        [systemd_analyze, "verify", "--man=no", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_sandbox_exposure_is_ok(unit: str) -> None:
    assert systemd_analyze is not None
    done = subprocess.run(
        [systemd_analyze, "security", "--offline=true", "--no-pager", str(PACKAGING / "systemd" / unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", done.stdout + done.stderr)
    assert found is not None, done.stdout + done.stderr
    exposure, verdict = float(found.group(1)), found.group(2)
    assert exposure <= EXPOSURE_LIMITS[unit], f"{unit}: exposure {exposure} {verdict}"
    assert verdict == "OK"


def _service(unit: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(PACKAGING / "systemd" / unit)
    return parser["Service"]


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("genba-agent.service", "genba agent serve --data /var/lib/genba/site"),
        ("genba-join.service", "genba agent join --data /var/lib/genba/site"),
        ("genba-server.service", "genba server start --kit /var/lib/genba-server/it-kit"),
    ],
)
def test_units_run_the_cli_as_a_service_user_with_only_their_data_writable(unit: str, command: str) -> None:
    service = _service(unit)
    assert service["ExecStart"] == f"/opt/genba/bin/{command}"
    assert service["User"].startswith("genba") and service["User"] != "root"
    assert service["Restart"] == "on-failure"
    assert service["StandardOutput"] == service["StandardError"] == "journal"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == service["PrivateTmp"] == service["NoNewPrivileges"] == "yes"
    assert "AF_INET" in service["RestrictAddressFamilies"]
    data = command.split()[-1].rsplit("/", 1)[0]
    assert service["ReadWritePaths"] == data
    assert data == "/var/lib/" + service["StateDirectory"]


def test_the_agent_reaches_loopback_only() -> None:
    service = _service("genba-agent.service")
    assert service["IPAddressDeny"] == "any"
    assert service["IPAddressAllow"] == "localhost"


def test_the_sysusers_file_makes_every_user_and_token_group_the_units_name() -> None:
    lines = (PACKAGING / "systemd/genba.sysusers.conf").read_text().splitlines()
    entries = {tuple(line.split()[:2]) for line in lines if line and not line.startswith("#")}
    for unit in UNITS:
        assert ("u", _service(unit)["User"]) in entries
    for role in ("operator", "supervisor", "integration"):  # edge_agent.site_init's token groups
        assert ("g", f"genba-{role}") in entries


def test_desktop_entry_opens_the_operator_app() -> None:
    entry = PACKAGING / "genba-gui.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(entry, encoding="utf-8")
    desktop = parser["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"].split()[1:3] == ["gui", "--data"]
    assert desktop["Terminal"] == "false"
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        return  # the parse above is the check; desktop-file-validate is Debian's desktop-file-utils
    done = subprocess.run([validate, str(entry)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
