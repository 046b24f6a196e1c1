"""``flower-supernode`` as a site runs it: Flower's own entry point, presenting the site's client certificate.

The federation's front (nginx, :mod:`server.front`) admits only clients with a certificate that the
federation's CA issued to an enrolled site. Flower 1.42's SuperNode dials the Fleet API with an
``httpx`` client that verifies the server (``--root-certificates``) but presents no certificate of
its own, so ``genba agent join`` starts it through :func:`main`: Flower's real ``flower-supernode``
with one change, that its Fleet client's TLS context carries the site's certificate and key
(``site-tls.crt``, ``keys/site-tls.key``), named in the environment by the site's SuperNode. It
also counts the site's traffic (:mod:`edge_agent.federation.traffic`) and marks in the egress
ledger each reply it could not deliver (:mod:`edge_agent.federation.undelivered`).
"""

from __future__ import annotations

import atexit
import os
import ssl
import sys
from pathlib import Path
from typing import Any

CERT_ENV = "GENBA_SITE_TLS_CERT"
KEY_ENV = "GENBA_SITE_TLS_KEY"


def client_context(root_certificates: bytes | str, certificate: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2+ that verifies the server against the federation's CA and presents the site's certificate."""
    if isinstance(root_certificates, bytes):
        context = ssl.create_default_context(cadata=root_certificates.decode("ascii"))
    else:
        context = ssl.create_default_context(cafile=root_certificates)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certificate), str(key))
    return context


def present_client_certificate(certificate: Path, key: Path) -> None:
    """Make the SuperNode's Fleet client (and only it) present ``certificate`` when it dials over TLS."""
    from flwr.supernode.fleet_http_client import FleetHttpClient

    def from_server_address(
        cls: Any,
        server_address: str,
        insecure: bool,
        root_certificates: bytes | str | None,
        interceptors: Any,
        *,
        retry_invoker: Any = None,
    ) -> Any:
        if insecure or root_certificates is None:
            raise ValueError("a site dials its SuperLink over TLS with the kit's CA, never insecure")
        context = client_context(root_certificates, certificate, key)
        return cls(
            f"https://{server_address}",
            interceptors=interceptors,
            verify=context,
            retry_invoker=retry_invoker,
        )

    FleetHttpClient.from_server_address = classmethod(from_server_address)  # type: ignore[method-assign,assignment]


def main() -> None:
    from flwr.supernode.cli import flower_supernode

    present_client_certificate(Path(os.environ[CERT_ENV]), Path(os.environ[KEY_ENV]))
    from edge_agent.federation.clientapp_process import ClientAppProcess
    from edge_agent.federation.pacing import pace_supernode
    from edge_agent.federation.pinned_clientapp import SITE_ENV
    from edge_agent.federation.traffic import count_fleet_traffic
    from edge_agent.federation.undelivered import mark_undelivered_replies

    site = Path(os.environ[SITE_ENV])
    clientapp = ClientAppProcess(site).start()  # the site's pinned ClientApp: this process's child, restarted
    # Bytes per round; polling paced by traffic; the ClientApp nudged when a message is in.
    count_fleet_traffic(site, on_message=pace_supernode().busy, on_stored=clientapp.nudge)
    mark_undelivered_replies(site)  # a ledgered reply Flower fails to send is marked in the ledger
    code = 0
    try:
        flower_supernode()
    except SystemExit as ended:  # Flower ends the SuperNode with sys.exit (a refusal included)
        code = ended.code if isinstance(ended.code, int) else int(ended.code is not None)
    finally:
        clientapp.stop()
    # Flower's exit handlers can leave the interpreter's shutdown waiting: end now, exit handlers
    # (the traffic totals) run first.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
