"""The SuperNode's traffic, counted on the wire per round, and its polling paced.

The byte count is checked against a counting TCP proxy in front of a real TLS server on loopback:
every byte the client's sockets carry (handshake, records, HTTP) must be counted, no more.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.federation.pacing import Pacer, PacingConfig
from edge_agent.federation.traffic import Tally, count_connections
from edge_agent.federation.traffic_report import control_traffic, traffic_file
from edge_agent.store import SiteStore


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, key_file = folder / "server.crt", folder / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SuperLink's front

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    cert, key = _certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), cert
    server.shutdown()


class _Client:
    """What ``count_connections`` expects of a Flower protobuf client: an httpx client in ``_client``."""

    def __init__(self, cert: Path) -> None:
        self._client = httpx.Client(verify=ssl.create_default_context(cafile=str(cert)))


def test_every_byte_on_the_wire_is_counted_tls_included(
    tmp_path: Path, tls_server: tuple[int, Path], byte_proxy: Any
) -> None:
    port, cert = tls_server
    tally = Tally(tmp_path / "traffic.json")
    client = _Client(cert)
    count_connections(client, tally)
    with byte_proxy.ByteCountingProxy(port) as proxy:
        for size in (10, 70_000, 3_000_000):  # small, several TLS records, a model's worth
            response = client._client.post(
                f"https://localhost:{proxy.port}/v1/fleet/push-object", content=b"x" * size
            )
            assert response.status_code == 200 and len(response.content) == size // 2
        client._client.close()  # no close_notify: the counts are final once the last answer arrived
        [counted] = tally.rounds()
    assert counted["sent"] == proxy.counts.upstream > 3_070_010
    assert counted["received"] == proxy.counts.downstream > 1_535_005
    assert proxy.counts.connections == 1  # one kept-alive connection, one handshake


def test_bytes_count_toward_the_round_of_the_newest_message_and_control_is_what_the_ledger_did_not_carry(
    tmp_path: Path,
) -> None:
    tally = Tally(traffic_file(tmp_path), clock=lambda: 100.0)
    tally.sent(1_000)  # activation, first polls
    tally.message(7, "1")
    tally.sent(5_000)
    tally.request("PullMessages", 0.01)
    tally.message(7, "2")
    tally.sent(2_000)
    tally.received(300)
    tally.message(7, "1")  # a late message of round 1: its bytes go back there
    tally.sent(10)
    tally.write()
    with SiteStore(tmp_path / "store.db") as store:
        for run, round_, size in ((7, 1, 4_000), (7, 2, 1_500), (8, 1, 99), (2**64 - 1, 1, 5)):  # other runs
            store.append_egress(
                destination="s", kind="x", payload_bytes=size, round=round_, content_sha256="a" * 64,
                details={"run": str(run)},
            )  # fmt: skip
        report = control_traffic(tmp_path, store.egress_payload)
        assert store.egress_payload(2**64 - 1, 1) == 5  # Flower's run ids are unsigned 64-bit
    assert report is not None
    rounds = {entry["round"]: entry for entry in report["rounds"]}
    assert rounds[None]["sent"] == rounds[None]["control"] == 1_000 and rounds[None]["run"] is None
    assert (rounds["1"]["sent"], rounds["1"]["payload"], rounds["1"]["control"]) == (5_010, 4_000, 1_010)
    assert (rounds["2"]["sent"], rounds["2"]["payload"], rounds["2"]["control"]) == (2_000, 1_500, 500)
    assert rounds["1"]["requests"] == {"PullMessages": 1} and rounds["2"]["received"] == 300
    assert control_traffic(tmp_path / "elsewhere", store.egress_payload) is None


#: A SuperNode whose exit takes too long: Flower's exit handlers run (as on SIGTERM), its goodbye is
#: sent, and its force-exit timer ends the process with ``os._exit``, which runs no ``atexit``.
_FORCED_EXIT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from flwr.supercore.exit.exit_handler import trigger_exit_handlers
    from edge_agent.federation.traffic import count_fleet_traffic

    tally = count_fleet_traffic(Path(sys.argv[1]))
    tally.sent(1_000)  # the rounds
    time.sleep(1.5)  # written by the periodic writer
    tally.sent(200)  # the last poll, within the writer's second
    trigger_exit_handlers(run_before_force_exit=True)  # SIGTERM: Flower's graceful exit begins
    tally.message(9, "2")
    tally.sent(300)  # DeactivateNode, sent from the connection's finally
    os._exit(0)  # Flower's force exit, 5 s later
""")


def test_every_byte_is_on_disk_even_when_flowers_force_exit_ends_the_supernode(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", _FORCED_EXIT, str(tmp_path)], check=True, timeout=120)
    document = json.loads(traffic_file(tmp_path).read_text())
    sent = {(entry["run"], entry["round"]): entry["sent"] for entry in document["rounds"]}
    assert sent == {(None, None): 1_200, (9, "2"): 300}


def test_the_supernode_polls_quickly_only_while_messages_flow() -> None:
    now = [0.0]
    pacer = Pacer(
        PacingConfig(active_poll_s=0.1, active_window_s=60.0, reply_check_s=0.01), clock=lambda: now[0]
    )
    assert pacer.interval(3) == 3  # idle: Flower's own 3 s between polls
    assert pacer.interval(0.5) == 0.01  # waiting for the ClientApp's reply
    pacer.busy()
    now[0] = 59.0
    assert pacer.interval(3) == 0.1
    now[0] = 61.0
    assert pacer.interval(3) == 3


class _CutMidAnswer(http.server.BaseHTTPRequestHandler):
    """Starts an answer, then the line drops: the TCP connection ends with no TLS close."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 100)
        self.wfile.flush()
        self.connection.close()  # an SSLSocket's close sends no close_notify
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def test_a_connection_dropped_mid_answer_is_an_error_flower_retries_not_a_tls_failure(tmp_path: Path) -> None:
    from flwr.supercore.retry import make_simple_http_retry_invoker

    cert, key = _certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutMidAnswer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = _Client(cert)
    count_connections(client, Tally(tmp_path / "traffic.json"))
    try:
        with pytest.raises(httpx.TransportError) as dropped:
            client._client.post(
                f"https://localhost:{server.server_address[1]}/v1/fleet/push-object", content=b"y"
            )
    finally:
        server.shutdown()
    retry = make_simple_http_retry_invoker()  # what the SuperNode sends its replies with
    assert isinstance(dropped.value, retry.recoverable_exceptions)
    assert retry.should_giveup is not None and not retry.should_giveup(dropped.value), str(dropped.value)
