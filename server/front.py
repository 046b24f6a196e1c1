"""The SuperLink's front: nginx, the only thing the plant network reaches.

Flower 1.42 serves its Fleet, Control and Runtime (ServerAppIo) APIs on one HTTP port, and the
open-source Control API has no authentication. So ``genba server start`` binds the SuperLink to
loopback and puts nginx (the operating system's package) on the provisioned address in front:

* mutual TLS: a client must present a certificate issued by the federation's CA to an enrolled
  site (``genba provision add-site --request``) and not listed in the CA's revocation list
  (``it/crl.pem``, rewritten by ``revoke-site``); anyone else fails the TLS handshake;
* only the Fleet calls a SuperNode makes (:data:`FLEET_CALLS`) are passed on, each by its exact
  path; every other path (the Control API: register a node, start or list runs; the Runtime API;
  Fleet's own register/unregister) answers 403 without reaching Flower;
* the upstream is the SuperLink's TLS port on 127.0.0.1, verified against the federation's CA;
* every request is logged with the client certificate's subject and its bytes each way
  (``front-access.log``), which is what the server reports as a site's traffic.

A change to the registry (a revoked site) is applied with ``reload()``: nginx re-reads the CRL
and its configuration without dropping the listening socket (``nginx -s reload``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from genba.errors import GenbaError

#: The Fleet API calls a SuperNode with an IT-registered key makes (Flower 1.42,
#: ``flwr/supernode/fleet_http_client.py``); register-node and unregister-node are not among
#: them: IT registers sites through the Control API, on loopback.
FLEET_CALLS = (
    "activate-node",
    "deactivate-node",
    "send-node-heartbeat",
    "pull-messages",
    "push-messages",
    "get-run",
    "get-fab",
    "push-object",
    "pull-object",
    "confirm-message-received",
)
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
INSTALL_HINT = "install the operating system's nginx (Debian: 'apt-get install nginx-light')"
#: Marks the front's own answer to a client certificate it refused (none, revoked, another CA's).
REFUSED_HEADER = "X-Genba-Front-Refused"
#: The largest request a site sends (a message object: a model update, chunked by Flower).
MAX_BODY = "256m"


class FrontError(GenbaError):
    """nginx, the SuperLink's front, is missing or did not start."""


@dataclass(frozen=True)
class FrontConfig:
    #: Where the plant network reaches the federation.
    bind: str
    port: int
    #: The SuperLink on loopback.
    upstream_port: int
    certificate: Path
    key: Path
    ca: Path
    crl: Path
    #: nginx's own folder: configuration, pid, logs, temporary files.
    root: Path
    start_timeout_s: float = 20.0


class Front:
    """A running nginx in front of the SuperLink; ``stop()`` ends it."""

    def __init__(self, config: FrontConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf_file(self) -> Path:
        return self.config.root / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.config.root / "front-access.log"

    @property
    def error_log(self) -> Path:
        return self.config.root / "front-error.log"

    def start(self) -> Front:
        nginx = nginx_executable()
        self._require_free_port()
        self._write_conf()
        self._test_conf(nginx)
        log = self.error_log.open("ab")
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.config.root), "-c", str(self.conf_file), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def reload(self) -> None:
        """Re-read the CRL and the configuration (a revoked site is refused from now on)."""
        if self.process is None or self.process.poll() is not None:
            raise FrontError("the front (nginx) is not running; restart 'genba server start'")
        self._write_conf()
        self._test_conf(nginx_executable())
        self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)  # graceful: workers finish what they serve
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -------------------------------------------------------------- internals

    def _write_conf(self) -> None:
        root = self.config.root
        for folder in ("tmp", "logs"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        temporary = self.conf_file.with_suffix(".tmp")
        temporary.write_text(render_conf(self.config), encoding="utf-8")
        os.replace(temporary, self.conf_file)

    def _require_free_port(self) -> None:
        """Refuse an address something already listens on: nginx would retry, fail and leave the
        sites talking to whatever holds it (another server left running)."""
        family = socket.AF_INET6 if ":" in self.config.bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.config.bind, self.config.port))
            except OSError as error:
                raise FrontError(
                    f"{self.config.bind}:{self.config.port} is already in use ({error.strerror}): is another "
                    "'genba server start' running? stop it, or start with --port PORT"
                ) from error

    def _test_conf(self, nginx: str) -> None:
        done = subprocess.run(
            [nginx, "-t", "-q", "-p", str(self.config.root), "-c", str(self.conf_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            reason = " ".join((done.stderr or done.stdout).split())[-300:]
            raise FrontError(f"nginx refused the front's configuration {self.conf_file}: {reason}")

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise FrontError(
                    f"nginx (the SuperLink's front) exited with code {self.process.returncode}: "
                    f"{last_log_line(self.error_log)}"
                )
            try:
                with socket.create_connection((self.config.bind, self.config.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise FrontError(f"the front did not listen on {self.config.bind}:{self.config.port} in time")


def nginx_executable() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise FrontError(
        f"nginx is not installed; 'genba server start' puts it in front of the SuperLink: {INSTALL_HINT}"
    )


def render_conf(config: FrontConfig) -> str:
    """nginx.conf for the front: mutual TLS, the Fleet allowlist, everything else 403."""
    root = config.root
    listen = f"[{config.bind}]" if ":" in config.bind else config.bind
    locations = "\n".join(
        f"        location = /v1/fleet/{call} {{ proxy_pass https://superlink; }}" for call in FLEET_CALLS
    )
    temp_paths = "\n".join(
        f"    {kind}_temp_path {root / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by 'genba server start' (server/front.py); rewritten at every start and reload.
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "front-error.log"} warn;
events {{ worker_connections 512; }}
http {{
    server_tokens off;
    access_log off;
{temp_paths}
    log_format genba escape=json '{{"time":"$time_iso8601","client":"$remote_addr",'
        '"site":"$ssl_client_s_dn","verify":"$ssl_client_verify","path":"$uri",'
        '"status":$status,"request_bytes":$request_length,"response_bytes":$bytes_sent,'
        '"msec":$msec,"request_time":$request_time,"connection":$connection,'
        '"connection_requests":$connection_requests}}';
    upstream superlink {{
        server 127.0.0.1:{config.upstream_port};
        keepalive 16;
    }}
    server {{
        listen {listen}:{config.port} ssl;
        access_log {root / "front-access.log"} genba;
        ssl_certificate {config.certificate};
        ssl_certificate_key {config.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate {config.ca};
        ssl_verify_client on;
        ssl_verify_depth 1;
        ssl_crl {config.crl};
        error_page 495 496 =407 @certificate_refused;
        client_max_body_size {MAX_BODY};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 600s;
        proxy_send_timeout 600s;
        proxy_ssl_trusted_certificate {config.ca};
        proxy_ssl_verify on;
        proxy_ssl_name localhost;  # a DNS name of the SuperLink certificate (nginx checks names, not IPs)
        proxy_ssl_server_name off;
        proxy_ssl_session_reuse on;
{locations}
        location / {{ return 403; }}
        location @certificate_refused {{
            add_header {REFUSED_HEADER} certificate always;
            return 407 "the federation did not admit this client certificate\n";
        }}
    }}
}}
"""


def wait_for_tls(host: str, port: int, ca: Path, timeout: float) -> bool:
    """Whether a TLS handshake with ``host:port`` verifies against ``ca`` within ``timeout``."""
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection((host, port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    return False


def last_log_line(path: Path) -> str:
    """The last non-empty line of a log (300 characters at most), for a one-line error."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[-300:] if lines else "no log"
