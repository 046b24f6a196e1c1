"""IT's certificates (the CA, the SuperLink's, each site's): warned within 30 days of their end and
stated as expired after, by ``genba server certificates``. Dates move through the ``now`` it takes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genba import env
from server import pki
from server.certificates import certificate_report

pytestmark = pytest.mark.fault


def _states(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in report["certificates"]}


def test_it_hears_of_each_certificate_near_its_end_and_of_each_expired_one(
    tmp_path: Path, enrolment: Any
) -> None:
    folder, _ = enrolment.provision_with_sites(tmp_path, ["site-a"])
    now = dt.datetime.now(dt.UTC)
    ca, server, site = (
        "the federation's CA certificate",
        "the SuperLink's TLS certificate",
        "site site-a's TLS client certificate",
    )
    today = certificate_report(folder.root, now=now)
    assert _states(today) == {ca: "ok", server: "ok", site: "ok"} and today["warnings"] == []

    near_site_end = certificate_report(folder.root, now=now + dt.timedelta(days=pki.CLIENT_DAYS - 12))
    assert _states(near_site_end) == {ca: "ok", server: "ok", site: "expiring"}
    (warning,) = near_site_end["warnings"]
    assert warning.startswith(f"{site} (") and "in 12 days" in warning and "enrols again" in warning

    past_server_end = certificate_report(folder.root, now=now + dt.timedelta(days=pki.SERVER_DAYS + 1))
    assert _states(past_server_end) == {ca: "ok", server: "expired", site: "expired"}
    assert any("renew-certificate" in line and "expired on" in line for line in past_server_end["warnings"])


def test_genba_server_certificates_prints_the_report(tmp_path: Path, enrolment: Any) -> None:
    folder, _ = enrolment.provision_with_sites(tmp_path, ["site-a"])
    shown = subprocess.run(
        [sys.executable, "-m", "genba", "server", "certificates", "--kit", str(folder.root)],
        capture_output=True, text=True, env=env.child_environment(), timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(shown.stdout)
    assert len(report["certificates"]) == 3 and report["warnings"] == []
    missing = subprocess.run(
        [sys.executable, "-m", "genba", "server", "certificates", "--kit", str(tmp_path / "nothing")],
        capture_output=True, text=True, env=env.child_environment(), timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
