"""``genba provision``: the CA, the SuperLink's certificate, IT's signing key, and a kit per enrolled site.

Layout of ``OUT`` (see DESIGN: the site kit)::

    it/                 IT's kit: stays on the server
      kit.toml          server host and port
      ca.crt ca.key     the federation's own CA (key 0600)
      crl.pem           the CA's list of revoked site client certificates (for the federation front)
      superlink.crt superlink.key   TLS for the SuperLink (key 0600)
      it-sign.pem(.pub) signs global bundles (0600)
      sites.json        every site provisioned: state, SuperNode auth key, signing key id,
                        client certificate (serial, SHA-256, key's SHA-256), request fingerprint
    sites/NAME/         one kit per site, answering its enrolment request; no private key in it
      kit.toml ca.crt site-tls.crt trusted/it-sign.pem.pub

A site makes its own keys and sends an enrolment request (``genba agent init --enrol-request``);
``add-site --request FILE`` checks it, records the public halves and issues the site's TLS client
certificate. IT never holds a site's private key. Everything is built in a staging folder and
renamed into place, so a failure leaves nothing behind, and nothing is ever overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba import keys
from genba.enrolment import EnrolmentError, EnrolmentRequest
from genba.errors import ConfigError, OutputPathError, UsageError
from genba.files import write_json_atomically
from server import pki

DEFAULT_PORT = 9092
ROLES = ("operator", "supervisor", "integration")
ACTIVE, REVOKED = "active", "revoked"


@dataclass(frozen=True)
class ProvisionConfig:
    out: Path
    server_host: str
    port: int = DEFAULT_PORT
    plant: str = "plant"

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(["port must be between 1 and 65535"])
        pki.check_host(self.server_host)


@dataclass(frozen=True)
class ITFolder:
    """``OUT`` as ``genba provision`` made it (always held as an absolute path: Flower's files need one)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).absolute())

    @property
    def it(self) -> Path:
        return self.root / "it"

    @property
    def kits(self) -> Path:
        return self.root / "sites"

    @property
    def registry_file(self) -> Path:
        return self.it / "sites.json"

    @property
    def signing_key(self) -> Path:
        return self.it / "it-sign.pem"

    @property
    def ca_file(self) -> Path:
        return self.it / "ca.crt"

    @property
    def crl_file(self) -> Path:
        """The CA's CRL of revoked site client certificates (PEM), replaced atomically on each revocation."""
        return self.it / "crl.pem"

    def require(self) -> ITFolder:
        if not (self.it / "kit.toml").is_file() or not self.registry_file.is_file():
            raise UsageError(f"{self.root} is not a folder made by 'genba provision' (no it/kit.toml)")
        return self

    def settings(self) -> dict[str, Any]:
        return tomllib.loads((self.it / "kit.toml").read_text(encoding="utf-8"))

    def registry(self) -> dict[str, dict[str, Any]]:
        return dict(json.loads(self.registry_file.read_text(encoding="utf-8"))["sites"])

    def superlink_address(self) -> str:
        federation = self.settings()["federation"]
        return f"{federation['server_host']}:{federation['port']}"

    def authority(self) -> pki.Authority:
        return pki.load_authority(self.ca_file, self.it / "ca.key")


def provision(config: ProvisionConfig, now: dt.datetime | None = None) -> ITFolder:
    """Create ``config.out`` in full (no site yet: sites come by request, :func:`add_site`), or nothing."""
    out = Path(config.out)
    if out.exists():
        raise OutputPathError(f"{out} already exists; choose another --out or remove it")
    with _staged_folder(out) as staging:
        folder = ITFolder(staging)
        folder.it.mkdir(parents=True)
        folder.kits.mkdir()
        authority = pki.new_authority(config.plant, now)
        pki.write_certificate(authority.certificate, folder.ca_file)
        pki.write_private_pem(authority.key, folder.it / "ca.key")
        certificate, tls_key = pki.server_certificate(authority, config.server_host, now=now)
        pki.write_certificate(certificate, folder.it / "superlink.crt")
        pki.write_private_pem(tls_key, folder.it / "superlink.key")
        keys.write_key_pair(keys.generate_signing_key(), folder.signing_key)
        (folder.it / "kit.toml").write_text(_it_toml(config, now), encoding="utf-8")
        _write_registry(folder, {})
        pki.write_crl(authority, [], folder.crl_file, now=now)
    return ITFolder(out)


def add_site(root: Path, request: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Check a site's enrolment request, record its public keys, issue its client certificate, write its kit.

    Refuses (one line, nothing written) a malformed request, a CSR not self-signed or not for the
    site's name, a name already provisioned (revoked ones included) and keys another site uses.
    Returns the kit's path, the request's fingerprint (for IT to confirm with the site) and the
    certificate's serial and fingerprint.
    """
    folder = ITFolder(root).require()
    enrolment = EnrolmentRequest.read(Path(request))
    registry = folder.registry()
    name = enrolment.site
    if name in registry:
        raise UsageError(
            f"site {name!r} is already provisioned ({registry[name]['state']}); a name is never reused: "
            "the site enrols again under another name"
        )
    _refuse_reused_keys(registry, enrolment)
    target = folder.kits / name
    if target.exists():
        raise OutputPathError(f"{target} already exists; remove it first")
    authority = folder.authority()
    certificate = pki.client_certificate(authority, enrolment.certificate_request, name, now=now)
    fingerprint = enrolment.fingerprint()
    with _staged_folder(target) as kit:
        (kit / "trusted").mkdir()
        shutil.copyfile(folder.ca_file, kit / "ca.crt")
        shutil.copyfile(folder.signing_key.with_name("it-sign.pem.pub"), kit / "trusted" / "it-sign.pem.pub")
        pki.write_certificate(certificate, kit / "site-tls.crt")
        (kit / "kit.toml").write_text(
            _site_toml(name, folder.superlink_address(), fingerprint), encoding="utf-8"
        )
    entry = {
        "state": ACTIVE,
        "auth_key": enrolment.auth_key,
        "sign_key_id": keys.key_id(enrolment.sign_public_key),
        "client_certificate": {
            "serial": pki.serial_hex(certificate),
            "sha256": pki.certificate_sha256(certificate),
            "key_sha256": keys.public_key_sha256(_tls_key(enrolment)),
            "valid_until": certificate.not_valid_after_utc.isoformat(),
        },
        "request_fingerprint": fingerprint,
        "provisioned_at": _timestamp(now),
        "revoked_at": None,
    }
    try:
        _write_registry(folder, {**registry, name: entry})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return {
        "site": name,
        "kit": str(target),
        "fingerprint": fingerprint,
        "certificate_serial": pki.serial_hex(certificate),
        "certificate_sha256": pki.certificate_sha256(certificate),
        "valid_until": certificate.not_valid_after_utc.isoformat(),
    }


def _tls_key(enrolment: EnrolmentRequest) -> Any:
    return enrolment.certificate_request.public_key()


def _refuse_reused_keys(registry: dict[str, dict[str, Any]], enrolment: EnrolmentRequest) -> None:
    """Each site's keys are its own: a key another site (even a revoked one) holds is refused."""
    sign_key_id = keys.key_id(enrolment.sign_public_key)
    tls_key = keys.public_key_sha256(_tls_key(enrolment))
    for other, entry in sorted(registry.items()):
        for held, value, what in (
            (entry.get("auth_key"), enrolment.auth_key, "SuperNode auth key"),
            (entry.get("sign_key_id"), sign_key_id, "signing key"),
            ((entry.get("client_certificate") or {}).get("key_sha256"), tls_key, "TLS key"),
        ):
            if held == value:
                raise EnrolmentError(
                    f"the request's {what} is already site {other!r}'s; each site makes its own keys: "
                    "enrol again from a fresh --data folder"
                )


def renew_certificate(
    root: Path, days: int = pki.SERVER_DAYS, now: dt.datetime | None = None
) -> dict[str, str]:
    """A new SuperLink certificate (and key) from the kit's CA; sites need nothing new."""
    folder = ITFolder(root).require()
    authority = pki.load_authority(folder.it / "ca.crt", folder.it / "ca.key")
    host = str(folder.settings()["federation"]["server_host"])
    certificate, tls_key = pki.server_certificate(authority, host, days=days, now=now)
    with _staged_folder(folder.it / "renewed-certificate") as staging:
        pki.write_certificate(certificate, staging / "superlink.crt")
        pki.write_private_pem(tls_key, staging / "superlink.key")
    renewed = folder.it / "renewed-certificate"
    os.replace(renewed / "superlink.key", folder.it / "superlink.key")
    os.replace(renewed / "superlink.crt", folder.it / "superlink.crt")
    renewed.rmdir()
    return {
        "certificate": str(folder.it / "superlink.crt"),
        "valid_until": certificate.not_valid_after_utc.isoformat(),
    }


def revoke_site(root: Path, name: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Mark the site revoked: the SuperLink stops admitting its key, the CRL lists its client certificate.

    Its kit is deleted if still here; the record stays, so neither its name nor its keys come back.
    """
    folder = ITFolder(root).require()
    registry = folder.registry()
    entry = registry.get(name)
    if entry is None:
        raise UsageError(f"no site {name!r} was provisioned here; known sites: {', '.join(sorted(registry))}")
    if entry["state"] == REVOKED:
        raise UsageError(f"site {name!r} is already revoked (since {entry['revoked_at']})")
    entry.update(state=REVOKED, revoked_at=_timestamp(now))
    write_crl(folder, registry, now=now)  # first: the front refuses the site even if the rest fails
    _write_registry(folder, registry)
    shutil.rmtree(folder.kits / name, ignore_errors=True)
    return entry


def write_crl(
    folder: ITFolder,
    registry: dict[str, dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
    days: int | None = None,
) -> Path:
    """``it/crl.pem`` anew from ``registry`` (default: ``sites.json``): every revoked site's certificate,
    with its revocation time; valid ``days`` days, or (None) until the CA expires."""
    sites = folder.registry() if registry is None else registry
    revoked = [
        (int(certificate["serial"], 16), dt.datetime.fromisoformat(entry["revoked_at"]))
        for entry in sites.values()
        if entry["state"] == REVOKED and (certificate := entry.get("client_certificate"))
    ]
    pki.write_crl(folder.authority(), revoked, folder.crl_file, now=now, days=days)
    return folder.crl_file


def _write_registry(folder: ITFolder, sites: dict[str, Any]) -> None:
    write_json_atomically(folder.registry_file, {"sites": sites})


@contextmanager
def _staged_folder(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _it_toml(config: ProvisionConfig, now: dt.datetime | None) -> str:
    return (
        "# Genba IT kit: stays on the server. Private keys here are 0600; never copy them to a site.\n"
        f'[federation]\nserver_host = "{config.server_host}"\nport = {config.port}\n\n'
        f'[provision]\nplant = "{config.plant}"\ncreated_at = "{_timestamp(now)}"\n'
    )


def _site_toml(name: str, superlink: str, request: str) -> str:
    roles = ", ".join(f'"{role}"' for role in ROLES)
    return (
        f"# Genba site kit for {name}, answering its enrolment request {request}. It holds no\n"
        "# private key: the site made its own. Copy this folder to the site PC and run there\n"
        "#   genba agent init --data DATA --kit THIS_FOLDER\n"
        "# with DATA the folder that made the request.\n"
        f'[site]\nname = "{name}"\nrequest = "{request}"\n\n'
        f'[federation]\nsuperlink = "{superlink}"\nca = "ca.crt"\ncertificate = "site-tls.crt"\n\n'
        f"[roles]\nnames = [{roles}]\n"
    )


def _timestamp(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()


def kit_sites(folder: ITFolder, states: Sequence[str] = (ACTIVE,)) -> dict[str, dict[str, Any]]:
    return {name: entry for name, entry in folder.registry().items() if entry["state"] in states}
