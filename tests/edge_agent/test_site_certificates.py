"""The kit's certificates at a site: warned within 30 days of their end, stated as expired after,
in the agent's status (API and ``genba agent status``). Certificates come from the kit's own PKI
(``server.pki``) with their dates moved, as IT's would be two years on."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import Agent
from edge_agent.config import ApiConfig, load_agent_config
from edge_agent.site import SiteFolder
from genba import env
from genba.certificates import check_certificate
from server import pki

pytestmark = pytest.mark.fault

NOW = dt.datetime(2028, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _ca_ending_in(days: float, now: dt.datetime) -> pki.Authority:
    """A kit CA issued long ago, so that it ends ``days`` after ``now``."""
    return pki.new_authority("plant", now=now - dt.timedelta(days=pki.CA_DAYS) + days * DAY)


def _leaf_ending_in(authority: pki.Authority, days: int, now: dt.datetime) -> Any:
    """A certificate issued 60 days before ``now`` that ends a minute short of ``days`` after it."""
    issued = now - 60 * DAY - dt.timedelta(minutes=1)
    certificate, _ = pki.server_certificate(authority, "site-a", days=60 + days, now=issued)
    return certificate


def _write(certificate: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pki.write_certificate(certificate, path)
    return path


@pytest.mark.parametrize(
    ("days", "state", "says"),
    [
        (400, "ok", "is valid until 2029-07-06"),
        (31, "ok", "is valid until"),
        (30, "expiring", "expires on 2028-07-01, in 30 days; renew it"),
        (2, "expiring", "expires on 2028-06-03, in 2 days; renew it"),
        (-3, "expired", "expired on 2028-05-29; renew it"),
    ],
)
def test_a_certificate_is_warned_within_30_days_and_stated_expired_after(
    tmp_path: Path, days: int, state: str, says: str
) -> None:
    authority = _ca_ending_in(1000, NOW)
    path = _write(_leaf_ending_in(authority, days, NOW), tmp_path / "leaf.crt")
    checked = check_certificate(path, "the leaf", now=NOW, renew="renew it")
    assert checked.state == state and says in checked.message, checked
    assert "\n" not in checked.message
    assert checked.needs_attention == (state != "ok")


def test_a_certificate_ahead_of_the_clock_or_unreadable_is_named_so(tmp_path: Path) -> None:
    issued_ahead, _ = pki.server_certificate(_ca_ending_in(1000, NOW), "site-a", now=NOW + 10 * DAY)
    future = _write(issued_ahead, tmp_path / "future.crt")
    checked = check_certificate(future, "the leaf", now=NOW, renew="renew it")
    assert checked.state == "not_yet_valid" and "check this PC's clock" in checked.message
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    unreadable = check_certificate(garbage, "the leaf", now=NOW, renew="renew it")
    assert unreadable.state == "unreadable" and unreadable.not_after is None


def write_expiring_kit(site: SiteFolder, client_days: int, ca_days: float) -> None:
    """The site's TLS certificate ending in ``client_days`` and the kit's CA in ``ca_days`` (from now)."""
    now = dt.datetime.now(dt.UTC)
    authority = _ca_ending_in(ca_days, now)
    _write(authority.certificate, site.ca_file)
    _write(_leaf_ending_in(authority, client_days, now), site.tls_cert_file)


def test_the_agents_status_warns_of_an_expiring_certificate_and_states_an_expired_one(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[[SiteFolder], Any],
    waiter: Callable[..., Any],
) -> None:
    site = make_site()
    agent = agent_process(site)
    with agent.client("operator") as client:
        assert client.status().certificates == []  # a standalone site holds no kit certificates
        write_expiring_kit(site, client_days=12, ca_days=-2)
        # Files changed behind the agent's back show once the polled status is older than its max-age.
        by_name = waiter(
            lambda: {c.name: c for c in client.status().certificates},
            timeout=ApiConfig().view_max_age_s + 3.0,
            what="the new certificates in the status",
        )
    client_certificate = by_name["the site's TLS client certificate"]
    assert client_certificate.state == "expiring" and 11.9 < (client_certificate.days_left or 0) <= 12.1
    assert "in 12 days; ask IT for a new site kit" in client_certificate.message
    ca = by_name["the kit's CA certificate"]
    assert ca.state == "expired" and "expired on" in ca.message and (ca.days_left or 0) < 0

    shown = subprocess.run(
        [sys.executable, "-m", "genba", "agent", "status", "--data", str(site.root)],
        capture_output=True, text=True, env=env.child_environment(), timeout=120, check=True,
    )  # fmt: skip
    states = {c["name"]: c["state"] for c in json.loads(shown.stdout)["certificates"]}
    assert states == {"the site's TLS client certificate": "expiring", "the kit's CA certificate": "expired"}


def test_a_site_made_from_its_kit_is_warned_30_days_before_its_certificate_ends(
    tmp_path: Path, enrolment: Any
) -> None:
    _, sites = enrolment.provision_with_sites(tmp_path, ["site-a"])
    site = sites["site-a"]
    end = pki.load_certificate(site.tls_cert_file).not_valid_after_utc.timestamp()
    for days_before_end, state in ((45, "ok"), (20, "expiring"), (-1, "expired")):
        agent = Agent(
            site, load_agent_config(site.config_file), clock=lambda d=days_before_end: end - d * 86400.0
        )
        try:
            agent.start(serving=False)
            states = {c["name"]: c["state"] for c in agent.status()["certificates"]}
        finally:
            agent.close()
        assert states == {"the site's TLS client certificate": state, "the kit's CA certificate": "ok"}
