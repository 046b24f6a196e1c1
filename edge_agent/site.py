"""The site's data folder: its layout, creation (``genba agent init``), keys, tokens and address file.

::

    DATA/
      agent.toml        settings (edge_agent.config)
      trusted/          public keys whose signatures this site accepts (*.pem, *.pub)
      tokens/           one bearer token per role: operator, supervisor, integration
      keys/             the site's own keys, made here and nowhere else (0600):
                          site-sign.pem (+ .pub) signs this site's own training candidates;
                          site-auth (+ .pub) the SuperNode's key, site-tls.key its TLS client key
                          (+ site-tls.csr); from the kit: ca.crt and site-tls.crt
      enrolment.json    the enrolment request this folder made (``genba agent init --enrol-request``);
                        with no agent.toml beside it the folder is awaiting its kit
      kit.toml          the kit's settings (site name, SuperLink address), when IT provisioned it
      models/           installed bundles, verified copies (never edited in place)
      store.db          the site store (SQLite, WAL)
      agent.addr        JSON with the running agent's URL, written once it listens
      agent.lock        held by the one agent serving this folder
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba import keys
from genba.errors import AgentUnavailableError, KeyFileError, UsageError
from genba.files import write_json_atomically

TOKEN_MODE_GROUP = 0o640
TOKEN_MODE_PRIVATE = 0o600
ROLES = ("operator", "supervisor", "integration")


@dataclass(frozen=True)
class SiteFolder:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "agent.toml"

    @property
    def trusted_dir(self) -> Path:
        return self.root / "trusted"

    @property
    def tokens_dir(self) -> Path:
        return self.root / "tokens"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def store_file(self) -> Path:
        return self.root / "store.db"

    @property
    def kit_file(self) -> Path:
        """The kit's settings (site name, SuperLink address), when IT provisioned this site."""
        return self.root / "kit.toml"

    @property
    def ca_file(self) -> Path:
        return self.root / "keys" / "ca.crt"

    @property
    def auth_key_file(self) -> Path:
        """The SuperNode authentication key (ECDSA, OpenSSH format, 0600)."""
        return self.root / "keys" / "site-auth"

    @property
    def tls_key_file(self) -> Path:
        """The TLS client key for mutual TLS to the federation front (ECDSA, PKCS#8 PEM, 0600)."""
        return self.root / "keys" / "site-tls.key"

    @property
    def tls_request_file(self) -> Path:
        """The certificate request for :attr:`tls_key_file` (also inside the enrolment request)."""
        return self.root / "keys" / "site-tls.csr"

    @property
    def tls_cert_file(self) -> Path:
        """The TLS client certificate IT issued for :attr:`tls_key_file` (from the kit)."""
        return self.root / "keys" / "site-tls.crt"

    @property
    def enrolment_file(self) -> Path:
        """What ``genba agent init --enrol-request`` recorded: site name, request file, fingerprint."""
        return self.root / "enrolment.json"

    def enrolment(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self.enrolment_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"{self.enrolment_file} is damaged ({exc}); remove {self.root} and enrol again"
            ) from exc
        if not isinstance(document, dict) or not isinstance(document.get("site"), str):
            raise UsageError(f"{self.enrolment_file} is damaged; remove {self.root} and enrol again")
        return document

    @property
    def awaiting_kit(self) -> bool:
        """Enrolled (its keys are here) but not yet initialised from the kit IT sent back."""
        return self.enrolment_file.is_file() and not self.config_file.is_file()

    @property
    def training_dir(self) -> Path:
        """Site training's own files: fine-tuned source weights, and scratch space while it runs."""
        return self.root / "training"

    @property
    def address_file(self) -> Path:
        return self.root / "agent.addr"

    @property
    def lock_file(self) -> Path:
        return self.root / "agent.lock"

    @property
    def site_key_file(self) -> Path:
        """The site's own Ed25519 key: it signs this site's training candidates and nothing else."""
        return self.root / "keys" / "site-sign.pem"

    def site_public_key(self) -> Any | None:
        public = self.site_key_file.with_name(self.site_key_file.name + ".pub")
        return keys.load_public_key(public) if public.is_file() else None

    def token_file(self, role: str) -> Path:
        return self.tokens_dir / f"{role}.token"

    def require_initialized(self) -> SiteFolder:
        if self.awaiting_kit:
            enrolment = self.enrolment() or {}
            raise UsageError(
                f"{self.root} is awaiting its kit (site {enrolment.get('site')!r} enrolled, request "
                f"{enrolment.get('fingerprint')}); send {enrolment.get('request')} to IT and finish with "
                f"'genba agent init --data {self.root} --kit KIT' using the kit IT makes from it"
            )
        if not self.config_file.is_file():
            raise UsageError(
                f"{self.root} is not a Genba site folder (no agent.toml); "
                "create it with 'genba agent init --data DIR --trust KEY'"
            )
        return self

    def trusted_keys(self) -> list[Any]:
        files = sorted(p for p in self.trusted_dir.glob("*") if p.suffix in (".pem", ".pub"))
        if not files:
            raise KeyFileError(
                f"{self.trusted_dir} holds no trusted public key; add one with 'genba agent init'"
            )
        return [keys.load_public_key(path) for path in files]

    def read_token(self, role: str) -> str:
        path = self.token_file(role)
        try:
            return path.read_text(encoding="ascii").strip()
        except FileNotFoundError as exc:
            raise KeyFileError(f"no {role} token at {path}; is this a Genba site folder?") from exc
        except PermissionError as exc:
            raise KeyFileError(
                f"cannot read the {role} token {path}: this user is not in the group that may use it"
            ) from exc

    def read_address(self) -> dict[str, Any]:
        try:
            data = json.loads(self.address_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise AgentUnavailableError(
                f"the agent for {self.root} is not running; "
                f"start it with 'genba agent serve --data {self.root}'"
            ) from exc
        if not isinstance(data, dict) or "url" not in data:
            raise AgentUnavailableError(f"{self.address_file} is damaged; restart the agent")
        return data

    def write_address(self, url: str, pid: int) -> None:
        write_json_atomically(self.address_file, {"url": url, "pid": pid, "openapi": url + "/openapi.json"})

    def clear_address(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, AgentUnavailableError):
            if self.read_address().get("pid") == pid:
                self.address_file.unlink()


@contextlib.contextmanager
def exclusive_agent(site: SiteFolder) -> Iterator[None]:
    """Hold the folder's lock while serving: two agents on one store would fight over its slots."""
    import fcntl

    handle = site.lock_file.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UsageError(f"another agent is already serving {site.root}; stop it first") from exc
        yield
    finally:
        handle.close()
