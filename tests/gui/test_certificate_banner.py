"""A certificate of the site's kit near its end, or past it, shows in the window's banner, worded
for the operator in English and Japanese; the agent's real status is what the window reads."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from edge_agent.config import ApiConfig
from edge_agent.site import SiteFolder
from server import pki

pytestmark = pytest.mark.fault


def _write_kit_certificates(site: SiteFolder, client_days: int, ca_days: int) -> None:
    """The kit's CA ending ``ca_days`` from now and the site's certificate ``client_days`` from now."""
    now = dt.datetime.now(dt.UTC)
    authority = pki.new_authority("plant", now=now - dt.timedelta(days=pki.CA_DAYS - ca_days))
    issued = now - dt.timedelta(days=60, minutes=1)
    leaf, _ = pki.server_certificate(authority, "site-a", days=60 + client_days, now=issued)
    site.ca_file.parent.mkdir(parents=True, exist_ok=True)
    pki.write_certificate(authority.certificate, site.ca_file)
    pki.write_certificate(leaf, site.tls_cert_file)


def _day(days_from_now: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days_from_now, minutes=-1)).date().isoformat()


def test_an_expiring_and_an_expired_certificate_show_in_the_banner(
    qtbot: Any, served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    window = open_window(served_site.site, role="operator")
    assert window.banner.property("state") == "up" and "certificate" not in window.banner.text()

    _write_kit_certificates(served_site.site, client_days=12, ca_days=-3)
    # Files changed behind the agent's back show once the polled status is older than its max-age.
    deadline = time.monotonic() + ApiConfig().view_max_age_s + 3.0
    while window.banner.property("state") != "warn" and time.monotonic() < deadline:
        qtbot.wait(250)
        window.refresh()
        settle(window)
    lines = window.banner.text().split("\n")
    assert window.banner.property("state") == "warn"
    assert "site-a" in lines[0]  # the usual line stays first
    assert lines[1] == (
        f"The kit's CA certificate expired on {_day(-3)}: federated training cannot connect until IT "
        "sends a new site kit."
    )  # the expired one first
    assert (
        lines[2]
        == f"The site's TLS certificate expires on {_day(12)}, in 12 days: ask IT for a new site kit."
    )

    window.set_language("ja")
    qtbot.waitUntil(lambda: "拠点の TLS 証明書の有効期限は" in window.banner.text(), timeout=5_000)
    assert "あと 12 日" in window.banner.text() and "キットの CA 証明書は" in window.banner.text()


def test_certificates_far_from_their_end_leave_the_banner_as_it_was(
    served_site: Any, open_window: Callable[..., Any], settle: Callable[..., None]
) -> None:
    _write_kit_certificates(served_site.site, client_days=400, ca_days=3000)
    window = open_window(served_site.site, role="operator")
    settle(window)
    assert window.banner.property("state") == "up" and "\n" not in window.banner.text()
