"""The site's SuperNode: ``flower-supernode`` with the site's auth key and the kit's CA, nothing more.

It dials only the SuperLink named in the kit (TLS verified against the kit's ``ca.crt``),
authenticates with ``keys/site-auth``, never installs app dependencies (no
``--allow-runtime-dependency-installation``), keeps its ``FLWR_HOME`` inside the site folder, and
serves its own Runtime API on loopback only. A SuperLink that does not know the site's key refuses
it (Flower's exit code 305 in the log), reported as :class:`JoinRefusedError`.

It runs with ``--isolation process``: it starts no ClientApp per message. Its own process starts the
site's one long-lived ClientApp process (:mod:`edge_agent.federation.pinned_clientapp`), which
alone holds the secret its tasks are claimed with, runs only approved app code, is started again
if it dies, and shares the SuperNode's process group, so :meth:`SuperNode.stop` ends both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge_agent.federation.state import clear_joined, write_joined
from edge_agent.federation.supernode_launch import CERT_ENV, KEY_ENV
from edge_agent.site import SiteFolder
from genba.errors import AgentError, UsageError
from genba.tools import flower_environment, free_loopback_port

#: What flower-supernode logs when the SuperLink refuses to activate the node (an unknown key);
#: the process itself exits with code 1, as it does for every failure.
REFUSED_MARK = "Failed to activate SuperNode"
TLS_MARKS = ("CERTIFICATE_VERIFY_FAILED", "SSL/TLS handshake error")
#: What the federation's front (nginx, server/front.py) answers a client certificate it refuses
#: (revoked, expired, or not issued by the federation's CA): 407, a status Flower never answers.
CERTIFICATE_REFUSED_MARKS = ("Client error '407",)


class JoinRefusedError(AgentError):
    """The SuperLink refused this site (its key is not registered, or was revoked)."""

    status = 403


class JoinFailedError(AgentError):
    """The SuperNode ended for another reason (no SuperLink reachable, bad certificate...)."""

    status = 502


@dataclass(frozen=True)
class JoinConfig:
    data: Path
    #: host:port; default: the kit's ``[federation] superlink``.
    superlink: str | None = None
    #: Give up after this many failed connection attempts (None: keep trying, as a site should).
    max_retries: int | None = None
    #: Only for ``bench/federated.py``: answer benchmark rounds and allow unmasked updates.
    benchmark: bool = False


class SuperNode:
    def __init__(self, config: JoinConfig) -> None:
        self.site = SiteFolder(Path(config.data)).require_initialized()
        self.superlink = config.superlink or _kit_superlink(self.site)
        for path, what in (
            (self.site.auth_key_file, "SuperNode auth key"),
            (self.site.ca_file, "kit's CA"),
            (self.site.tls_key_file, "TLS client key"),
            (self.site.tls_cert_file, "TLS client certificate, from the kit"),
        ):
            if not path.is_file():
                raise UsageError(
                    f"{path} ({what}) is missing: this site was not initialised from a kit; "
                    "run 'genba agent init --kit KIT' with the kit 'genba provision' made"
                )
        self.config = config
        self.home = self.site.root / "federation" / "flwr-home"
        self.log = self.site.root / "federation" / "supernode.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        #: Held by the SuperNode and the site's ClientApp process only: who may claim its tasks.
        self.task_secret = self.site.root / "federation" / "task.secret"
        self.runtime_port = 0

    def command(self, runtime_port: int) -> list[str]:
        command = [
            sys.executable, "-m", "edge_agent.federation.supernode_launch",  # presents the site's certificate
            "--root-certificates", str(self.site.ca_file),
            "--superlink", self.superlink,
            "--auth-supernode-private-key", str(self.site.auth_key_file),
            "--host", "127.0.0.1",
            "--port", str(runtime_port),
            "--node-config", self.node_config(),
        ]  # fmt: skip
        if self.config.max_retries is not None:
            command += ["--max-retries", str(self.config.max_retries)]
        return command

    def clientapp_arguments(self) -> list[str]:
        """The SuperNode runs no ClientApp itself: it waits for the site's own process to claim each task
        (:mod:`edge_agent.federation.pinned_clientapp`), which alone holds the task secret."""
        return ["--isolation", "process", "--superexec-auth-secret-file", str(self.task_secret)]

    def environment(self) -> dict[str, str]:
        """Flower's environment, and what the site's ClientApp process needs (approved FABs, the secret)."""
        from edge_agent.federation.pinned_clientapp import APPROVED_ENV, RUNTIME_ENV, SECRET_ENV, SITE_ENV

        environment = flower_environment(self.home)
        environment[APPROVED_ENV] = ",".join(approved_fabs(self.site))
        environment[SITE_ENV] = str(self.site.root.resolve())
        environment[SECRET_ENV] = str(self.task_secret.resolve())
        environment[RUNTIME_ENV] = f"127.0.0.1:{self.runtime_port}"
        environment[CERT_ENV] = str(self.site.tls_cert_file.resolve())
        environment[KEY_ENV] = str(self.site.tls_key_file.resolve())
        from edge_agent.federation.client_app import BENCH_ENV

        environment.pop(BENCH_ENV, None)
        if self.config.benchmark:
            environment[BENCH_ENV] = "1"
        return environment

    def node_config(self) -> str:
        """What the site's ClientApp is told: its site folder and where its replies go (for the ledger)."""
        data = str(self.site.root.resolve())
        if any(character.isspace() or character in "\"'=" for character in data + self.superlink):
            raise UsageError(f"the site folder path {data!r} must not contain spaces, quotes or '='; move it")
        return f'data="{data}" superlink="{self.superlink}"'

    def start(self) -> SuperNode:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        _write_secret(self.task_secret)
        self.runtime_port = free_loopback_port()
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command(self.runtime_port) + self.clientapp_arguments(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,  # its own process group: stop() ends its ClientApp process too
        )
        log.close()
        write_joined(self.site, self.process.pid, self.superlink)
        return self

    def wait(self, timeout: float | None = None) -> int:
        """Until the SuperNode ends; its refusal or failure as a one-line error."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        if REFUSED_MARK in self._this_run_log():
            raise JoinRefusedError(
                f"the SuperLink at {self.superlink} refused site '{self.site.root.name}': its key is not "
                "registered there (revoked, or not yet added); ask IT to run 'genba server start'"
            )
        if any(mark in self._this_run_log() for mark in CERTIFICATE_REFUSED_MARKS):
            raise JoinRefusedError(
                f"the federation at {self.superlink} refused site '{self.site.root.name}''s certificate "
                f"({self.site.tls_cert_file}): revoked, expired or not issued to this site; ask IT"
            )
        if any(mark in self._this_run_log() for mark in TLS_MARKS):
            raise JoinFailedError(
                f"the SuperLink at {self.superlink} did not present a valid certificate from this site's CA "
                f"({self.site.ca_file}): expired, or from another CA; check the address and the kit"
            )
        if code not in (0, -15, 143):
            raise JoinFailedError(f"flower-supernode ended with code {code}: {self.last_log_line()}")
        return code

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the SuperNode and every ClientApp process it started (they share its process group)."""
        process = self.process
        if process is None:
            return
        clear_joined(self.site, process.pid)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        _signal_group(process.pid, signal.SIGKILL)  # a ClientApp left behind by a SuperNode that died

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def last_log_line(self) -> str:
        try:
            lines = [
                line.strip() for line in self.log.read_text(errors="replace").splitlines() if line.strip()
            ]
        except OSError:
            return "no log"
        meaningful = [line for line in lines if "ERROR" in line or "error" in line.lower()]
        return (meaningful or lines or ["no log"])[-1][-300:]

    def _this_run_log(self) -> str:
        try:
            with self.log.open("rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> SuperNode:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def approved_fabs(site: SiteFolder) -> list[str]:
    """The FAB this installation builds, plus any hash IT asked the site to approve in writing."""
    from genba.federation import genba_fab_hash

    approved = [genba_fab_hash()]
    extra = site.root / "federation" / "approved-fabs"
    if extra.is_file():
        for line in extra.read_text(encoding="ascii").splitlines():
            entry = line.split("#", 1)[0].strip().lower()
            if len(entry) == 64 and all(c in "0123456789abcdef" for c in entry):
                approved.append(entry)
    return approved


def _kit_superlink(site: SiteFolder) -> str:
    try:
        document = tomllib.loads(site.kit_file.read_text(encoding="utf-8"))
        return str(document["federation"]["superlink"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{site.kit_file} names no SuperLink: initialise the site from its kit, "
            "or pass --superlink HOST:PORT"
        ) from exc


def _write_secret(path: Path) -> None:
    """A new random secret for this join, readable by the site's user only."""
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(32))


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
