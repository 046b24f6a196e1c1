"""``genba provision``: the CA, the SuperLink's certificate, IT's signing key and one kit per site.

Layout of ``OUT`` (see DESIGN: the site kit)::

    it/                 IT's kit: stays on the server
      kit.toml          server host and port
      ca.crt ca.key     the federation's own CA (key 0600)
      superlink.crt superlink.key   TLS for the SuperLink (key 0600)
      it-sign.pem(.pub) signs global bundles (0600)
      sites.json        every site provisioned: state, SuperNode auth key, signing key id
    sites/NAME/         one kit per site: carried to the site PC, then deleted here
      kit.toml ca.crt site-auth(.pub) site-sign.pem(.pub) trusted/it-sign.pem.pub

IT keeps only public keys of sites (``sites.json``); a site's private keys exist in its kit
alone. Everything is built in a staging folder and renamed into place, so a failure leaves
nothing behind, and nothing is ever overwritten.
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
from genba.errors import ConfigError, OutputPathError, UsageError
from genba.names import is_site_name
from server import pki

DEFAULT_PORT = 9092
ROLES = ("operator", "supervisor", "integration")
ACTIVE, REVOKED = "active", "revoked"


@dataclass(frozen=True)
class ProvisionConfig:
    out: Path
    server_host: str
    sites: tuple[str, ...]
    port: int = DEFAULT_PORT
    plant: str = "plant"

    def __post_init__(self) -> None:
        problems = []
        if not self.sites:
            problems.append("name at least one site: --sites a b c")
        problems += [problem for name in self.sites for problem in site_name_problems(name)]
        if len(set(self.sites)) != len(self.sites):
            problems.append("site names must be distinct")
        if not 1 <= self.port <= 65535:
            problems.append("port must be between 1 and 65535")
        if problems:
            raise ConfigError(problems)
        pki.check_host(self.server_host)


def site_name_problems(name: str) -> list[str]:
    if not is_site_name(name) or len(name) > 64:
        return [f"site name {name!r} must be 1-64 ASCII letters, digits, '-' or '_'"]
    return []


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


def provision(config: ProvisionConfig, now: dt.datetime | None = None) -> ITFolder:
    """Create ``config.out`` in full, or nothing."""
    out = Path(config.out)
    if out.exists():
        raise OutputPathError(f"{out} already exists; choose another --out or remove it")
    with _staged_folder(out) as staging:
        folder = ITFolder(staging)
        folder.it.mkdir(parents=True)
        folder.kits.mkdir()
        authority = pki.new_authority(config.plant, now)
        pki.write_certificate(authority.certificate, folder.it / "ca.crt")
        pki.write_private_pem(authority.key, folder.it / "ca.key")
        certificate, tls_key = pki.server_certificate(authority, config.server_host, now=now)
        pki.write_certificate(certificate, folder.it / "superlink.crt")
        pki.write_private_pem(tls_key, folder.it / "superlink.key")
        keys.write_key_pair(keys.generate_signing_key(), folder.signing_key)
        (folder.it / "kit.toml").write_text(_it_toml(config, now), encoding="utf-8")
        _write_registry(folder, {})
        for name in config.sites:
            _add_site(folder, name, now)
    return ITFolder(out)


def add_site(root: Path, name: str, now: dt.datetime | None = None) -> Path:
    """A kit for one more site; refuses a name already provisioned (revoked ones included)."""
    problems = site_name_problems(name)
    if problems:
        raise ConfigError(problems)
    return _add_site(ITFolder(root).require(), name, now)


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
    """Mark the site revoked (the SuperLink stops admitting its key) and delete its kit if still here."""
    folder = ITFolder(root).require()
    registry = folder.registry()
    entry = registry.get(name)
    if entry is None:
        raise UsageError(f"no site {name!r} was provisioned here; known sites: {', '.join(sorted(registry))}")
    if entry["state"] == REVOKED:
        raise UsageError(f"site {name!r} is already revoked (since {entry['revoked_at']})")
    entry.update(state=REVOKED, revoked_at=_timestamp(now))
    _write_registry(folder, registry)
    shutil.rmtree(folder.kits / name, ignore_errors=True)
    return entry


def _add_site(folder: ITFolder, name: str, now: dt.datetime | None) -> Path:
    registry = folder.registry()
    if name in registry:
        raise UsageError(
            f"site {name!r} is already provisioned ({registry[name]['state']}); choose another name"
        )
    target = folder.kits / name
    if target.exists():
        raise OutputPathError(f"{target} already exists; remove it first")
    with _staged_folder(target) as kit:
        (kit / "trusted").mkdir()
        shutil.copyfile(folder.it / "ca.crt", kit / "ca.crt")
        shutil.copyfile(folder.signing_key.with_name("it-sign.pem.pub"), kit / "trusted" / "it-sign.pem.pub")
        auth_key = pki.new_auth_key()
        pki.write_auth_key_pair(auth_key, kit / "site-auth")
        sign_key = keys.generate_signing_key()
        keys.write_key_pair(sign_key, kit / "site-sign.pem")
        (kit / "kit.toml").write_text(_site_toml(name, folder.superlink_address()), encoding="utf-8")
    registry[name] = {
        "state": ACTIVE,
        "auth_key": pki.auth_public_line(auth_key.public_key()),
        "sign_key_id": keys.key_id(sign_key.public_key()),
        "provisioned_at": _timestamp(now),
        "revoked_at": None,
    }
    _write_registry(folder, registry)
    return target


def _write_registry(folder: ITFolder, sites: dict[str, Any]) -> None:
    temporary = folder.registry_file.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"sites": sites}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, folder.registry_file)


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


def _site_toml(name: str, superlink: str) -> str:
    roles = ", ".join(f'"{role}"' for role in ROLES)
    return (
        f"# Genba site kit for {name}: copy this folder to the site PC, run\n"
        f"#   genba agent init --data DATA --kit THIS_FOLDER\n"
        "# and then delete it from the IT server (it holds the site's private keys).\n"
        f'[site]\nname = "{name}"\n\n'
        f'[federation]\nsuperlink = "{superlink}"\nca = "ca.crt"\nauth_key = "site-auth"\n\n'
        f"[roles]\nnames = [{roles}]\n"
    )


def _timestamp(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()


def kit_sites(folder: ITFolder, states: Sequence[str] = (ACTIVE,)) -> dict[str, dict[str, Any]]:
    return {name: entry for name, entry in folder.registry().items() if entry["state"] in states}
