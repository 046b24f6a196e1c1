"""The SuperLink IT runs: on loopback, behind its front, its state inside the IT folder.

``flower-superlink`` serves the Fleet, Control and Runtime APIs on one ``--host/--port`` (Flower
1.42) and its Control API has no authentication, so it listens on 127.0.0.1 only (a port chosen
at start) with the kit's certificate, ``--enable-supernode-auth`` (only registered SuperNode keys
may connect) and ``--disable-runtime-dependency-installation`` (it never runs ``uv sync``). The
plant network reaches only its front (:mod:`server.front`: nginx with mutual TLS, the Fleet calls
a SuperNode makes and nothing else) on the provisioned address and port. It runs through
:mod:`server.superlink_launch` (its state in memory but for the sites' registrations, kept in
``it/server/superlink-nodes.json``). That file, its log and ``FLWR_HOME`` (the ``flwr`` CLI's
connection to it, over loopback) live in ``it/server/``;
telemetry is off through :func:`genba.env.child_environment`.

Sites are registered with ``flwr supernode register`` from ``it/sites.json``: every active site
once (its node id kept in ``it/server/nodes.json``), and a revoked site's node unregistered.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba.errors import GenbaError
from genba.files import write_json_atomically
from genba.tools import console_tool, flower_environment, free_loopback_port
from server import pki
from server.front import Front, FrontConfig, last_log_line
from server.provision import ACTIVE, REVOKED, ITFolder
from server.revocation import REFRESH_S, write_revocation_list

CONNECTION = "genba"
#: How often a running server looks at the registry (a revocation applies within this).
WATCH_S = 0.5


class SuperLinkError(GenbaError):
    """The SuperLink did not start, or refused what IT asked of it. Exit code 1."""


@dataclass(frozen=True)
class ServerConfig:
    kit: Path
    #: Address to listen on; default: the provisioned host when it is an IP address, else all interfaces.
    bind: str | None = None
    #: Default: the provisioned port (kit.toml).
    port: int | None = None
    start_timeout_s: float = 60.0


@dataclass(frozen=True)
class ServerFolder:
    """``it/server/``: the SuperLink's own files."""

    folder: ITFolder

    @property
    def root(self) -> Path:
        return self.folder.it / "server"

    @property
    def flwr_home(self) -> Path:
        return self.root / "flwr-home"

    @property
    def database(self) -> Path:
        """The SuperLink's sites' registrations (:mod:`server.link_state`; its other state is in memory)."""
        return self.root / "superlink-nodes.json"

    @property
    def log(self) -> Path:
        return self.root / "superlink.log"

    @property
    def nodes_file(self) -> Path:
        return self.root / "nodes.json"

    def environment(self) -> dict[str, str]:
        return flower_environment(self.flwr_home)

    def nodes(self) -> dict[str, dict[str, Any]]:
        if not self.nodes_file.is_file():
            return {}
        return dict(json.loads(self.nodes_file.read_text(encoding="utf-8")))

    def write_nodes(self, nodes: dict[str, dict[str, Any]]) -> None:
        write_json_atomically(self.nodes_file, nodes)


class SuperLink:
    """A running ``flower-superlink``; ``stop()`` (or leaving the ``with``) ends it."""

    def __init__(self, config: ServerConfig) -> None:
        self.folder = ITFolder(Path(config.kit)).require()
        self.server = ServerFolder(self.folder)
        federation = self.folder.settings()["federation"]
        self.host = str(federation["server_host"])
        self.port = int(config.port or federation["port"])
        self.bind = config.bind or _default_bind(self.host)
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        #: The SuperLink's own port on 127.0.0.1 (chosen at start; only the front and IT use it).
        self.upstream_port = 0
        self.front: Front | None = None

    @property
    def address(self) -> str:
        """What sites dial: the front."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        it = self.folder.it
        return [
            sys.executable, "-m", "server.superlink_launch",  # flower-superlink, payloads in memory
            "--ssl-certfile", str(it / "superlink.crt"),
            "--ssl-keyfile", str(it / "superlink.key"),
            "--ssl-ca-certfile", str(it / "ca.crt"),
            "--enable-supernode-auth",
            "--disable-runtime-dependency-installation",
            "--database", str(self.server.database),
            "--host", "127.0.0.1",
            "--port", str(self.upstream_port),
        ]  # fmt: skip

    def start(self) -> SuperLink:
        self._require_valid_certificate()
        self.server.flwr_home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.server.root, 0o700)
        self.upstream_port = free_loopback_port()
        self._write_connection()
        log = self.server.log.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.server.environment()
        )
        log.close()
        try:
            self._wait_ready()
            write_revocation_list(self.folder)
            self.front = Front(self._front_config()).start()
        except BaseException:
            self.stop()
            raise
        return self

    def apply_registry(self) -> dict[str, Any]:
        """A changed ``sites.json`` (a site revoked or added) takes effect now, server running:
        the CRL is rewritten and the front reloads it, and the SuperLink's nodes are synced."""
        write_revocation_list(self.folder)
        if self.front is not None:
            self.front.reload()
        return self.sync_sites()

    def serve(self, stop: threading.Event, on_change: Callable[[dict[str, Any]], None]) -> None:
        """Until ``stop`` is set: a registry change applies within :data:`WATCH_S` seconds (a revoked
        site is refused from then on), the CRL is kept fresh, and a SuperLink or front that died
        ends the server with a SuperLinkError."""
        registry = self.folder.registry_file
        seen = _modified(registry)
        refreshed = time.monotonic()
        while not stop.wait(WATCH_S):
            self._require_running()
            if _modified(registry) != seen:
                seen = _modified(registry)
                changes = self.apply_registry()
                on_change({"registry_applied": True, "registered": changes["registered"],
                           "unregistered": changes["unregistered"]})  # fmt: skip
            elif time.monotonic() - refreshed > REFRESH_S:
                write_revocation_list(self.folder)
                if self.front is not None:
                    self.front.reload()
                refreshed = time.monotonic()

    def _require_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise SuperLinkError(
                f"the SuperLink stopped (code {self.process.returncode}); see {self.server.log}"
            )
        if self.front is not None and not self.front.running():
            raise SuperLinkError(f"the front (nginx) stopped; see {self.front.error_log}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the front, the SuperLink and what it started: its SuperExec and the ServerApp of a run
        in progress, which Flower leaves behind (it keeps dialling the SuperLink that is gone)."""
        if self.front is not None:
            self.front.stop()
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        started = _descendants(process.pid)
        process.terminate()
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=timeout)
        _end(started, min(timeout, 5.0))
        return code

    def __enter__(self) -> SuperLink:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- sites

    def sync_sites(self) -> dict[str, Any]:
        """Register every active site not yet registered; unregister revoked ones. Returns what changed."""
        nodes = self.server.nodes()
        listed = self.flwr("supernode", "ls")["nodes"]
        live = {node["node-id"] for node in listed if node["status"] not in ("unregistered", "deleted")}
        registered, unregistered = [], []
        for name, entry in sorted(self.folder.registry().items()):
            known = nodes.get(name)
            if entry["state"] == ACTIVE and (known is None or known["node_id"] not in live):
                nodes[name] = {"node_id": self._register(name, entry["auth_key"]), "state": ACTIVE}
                registered.append(name)
            elif entry["state"] == REVOKED and known is not None and known["state"] != REVOKED:
                if known["node_id"] in live:
                    self.flwr("supernode", "unregister", known["node_id"])
                nodes[name] = {**known, "state": REVOKED}
                unregistered.append(name)
            else:
                continue
            self.server.write_nodes(nodes)  # after each change: a later failure keeps what was done
        return {"registered": registered, "unregistered": unregistered, "nodes": nodes}

    def flwr(self, *args: str) -> dict[str, Any]:
        """One ``flwr`` CLI command against this SuperLink, JSON out; its error as a SuperLinkError."""
        command = [console_tool("flwr"), *args, CONNECTION, "--format", "json"]
        done = subprocess.run(
            command, capture_output=True, text=True, env=self.server.environment(), timeout=60
        )
        try:
            result: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
        except (ValueError, json.JSONDecodeError):
            result = {"success": False, "error-message": (done.stderr or done.stdout).strip()[-300:]}
        if done.returncode != 0 or not result.get("success", False):
            message = " ".join(str(result.get("error-message") or "no reason given").split())
            raise SuperLinkError(f"'flwr {' '.join(args[:2])}' failed: {message}")
        return result

    def _register(self, name: str, auth_key: str) -> str:
        key_file = self.server.root / f"{name}.pub"
        key_file.write_text(auth_key + "\n", encoding="ascii")
        try:
            result = self.flwr("supernode", "register", str(key_file), "--name", name)
        finally:
            key_file.unlink(missing_ok=True)
        return str(result["node-id"])

    # -------------------------------------------------------------- internals

    def _require_valid_certificate(self) -> None:
        """Sites refuse an expired certificate: say so here, before any site tries."""
        certificate = pki.load_certificate(self.folder.it / "superlink.crt")
        now = dt.datetime.now(dt.UTC)
        renew = f"issue a new one with 'genba provision renew-certificate --out {self.folder.root}'"
        if certificate.not_valid_after_utc < now:
            raise SuperLinkError(
                f"the SuperLink certificate {self.folder.it / 'superlink.crt'} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}; {renew}"
            )
        if certificate.not_valid_before_utc > now:
            raise SuperLinkError(
                "the SuperLink certificate is not valid before "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
                f"(is this server's clock right?); {renew}"
            )

    def _front_config(self) -> FrontConfig:
        it = self.folder.it
        return FrontConfig(
            bind=self.bind,
            port=self.port,
            upstream_port=self.upstream_port,
            certificate=it / "superlink.crt",
            key=it / "superlink.key",
            ca=it / "ca.crt",
            crl=self.folder.it / "crl.pem",
            root=self.server.root / "front",
        )

    def _write_connection(self) -> None:
        """``FLWR_HOME/config.toml``: how the ``flwr`` CLI reaches this SuperLink (loopback, the kit's CA)."""
        ca = self.folder.it / "ca.crt"
        document = (
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self.upstream_port}"\n'
            f'root-certificates = "{ca}"\n'
        )
        (self.server.flwr_home / "config.toml").write_text(document, encoding="utf-8")

    def _wait_ready(self) -> None:
        """Until a TLS handshake on loopback succeeds with the kit's CA (or the process ends)."""
        context = ssl.create_default_context(cafile=str(self.folder.it / "ca.crt"))
        deadline = time.monotonic() + self.config.start_timeout_s
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SuperLinkError(
                    f"flower-superlink exited with code {self.process.returncode}: {self._last_log_line()}"
                )
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except (OSError, ssl.SSLError):
                time.sleep(0.25)
        raise SuperLinkError(
            f"the SuperLink did not accept TLS connections on 127.0.0.1:{self.upstream_port} in time"
        )

    def _last_log_line(self) -> str:
        return last_log_line(self.server.log)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from Linux ``/proc``; none where it cannot be read)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, waiting = [], [pid]
    while waiting:
        below = children.get(waiting.pop(), [])
        found += below
        waiting += below
    return found


def _end(pids: list[int], timeout: float) -> None:
    """SIGTERM each process still there, then SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if _signal(pid, sig)]
        deadline = time.monotonic() + timeout
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _running(pid)]
        if not alive:
            return


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal(pid: int, sig: int) -> bool:
    """Send ``sig``; whether the process was there to receive it."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _modified(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def _default_bind(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return "0.0.0.0"
