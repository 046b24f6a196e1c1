"""Creating a site folder (``genba agent init``): the site's own keys, settings, trusted keys, tokens.

Three ways in:

* **Enrol** (``--site NAME --enrol-request FILE``): the site makes its own keys in ``DATA/keys``
  (SuperNode auth key, bundle-signing key, TLS client key and its CSR) and writes their public
  halves to FILE for IT. The folder is then *awaiting its kit*: serve and join refuse it.
* **Finish from the kit** (``--kit KIT``) IT made from that request: checked to be this site's
  (name, certificate for this folder's TLS key, signed by the kit's CA), then installed. A kit
  that carries private keys (made by an earlier release) is refused: IT never holds a site's key.
* **Standalone** (``--trust PUBKEY``): no federation; a fresh signing key, trusted signers given.
"""

from __future__ import annotations

import datetime as dt
import grp
import json
import os
import secrets
import shutil
import tomllib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_agent.config import AgentConfig, config_from_mapping, default_toml
from edge_agent.site import ROLES, TOKEN_MODE_GROUP, TOKEN_MODE_PRIVATE, SiteFolder
from genba import keys
from genba.enrolment import FORMAT, EnrolmentError, EnrolmentRequest, site_name_problem
from genba.errors import ConfigError, KeyFileError, OutputPathError, UsageError

#: What a kit from IT holds, besides ``trusted/``: no private key, ever.
KIT_FILES = ("kit.toml", "ca.crt", "site-tls.crt")
_PRIVATE_MARK = b"PRIVATE KEY-----"


def enrol_site(root: Path, site_name: str, request: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Make the site's own keys in ``root/keys`` and write its enrolment request to ``request``.

    All or nothing: on any failure the keys, the request and the folder (if made here) are removed.
    Returns what to tell the user: the folder, the site, the request file and its fingerprint.
    """
    problem = site_name_problem(site_name)
    if problem:
        raise ConfigError([problem])
    AgentConfig(site=site_name)  # the agent accepts the name too
    site = SiteFolder(Path(root))
    if site.config_file.exists():
        raise OutputPathError(f"{site.root} is already a site folder; choose another --data or remove it")
    enrolled = site.enrolment()
    if enrolled is not None:
        raise OutputPathError(
            f"{site.root} already enrolled as {enrolled['site']!r} (request {enrolled.get('fingerprint')}, "
            f"{enrolled.get('request')}); send that request to IT, or remove {site.root} to start over"
        )
    keys_dir = site.site_key_file.parent
    if keys_dir.exists() and any(keys_dir.iterdir()):
        raise OutputPathError(f"{keys_dir} already holds keys; choose another --data or remove it")
    request = Path(request).absolute()
    if request.exists():
        raise OutputPathError(f"{request} already exists; choose another --enrol-request or remove it")
    if not request.parent.is_dir():
        raise OutputPathError(f"{request.parent} is not a folder; the enrolment request cannot go there")

    auth_key, tls_key = keys.generate_federation_key(), keys.generate_federation_key()
    sign_key = keys.generate_signing_key()
    csr = keys.certificate_request(tls_key, site_name)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    document = EnrolmentRequest(
        site=site_name,
        auth_key=keys.auth_public_line(auth_key.public_key()),
        sign_key=keys.public_key_pem(sign_key.public_key()).decode("ascii"),
        csr=pem.decode("ascii"),
    )
    fingerprint = document.fingerprint()

    made_root = not site.root.exists()
    made: list[Path] = []
    try:
        site.root.mkdir(parents=True, exist_ok=True)
        staging = site.root / f".keys.staging-{secrets.token_hex(4)}"
        staging.mkdir()
        made.append(staging)
        keys.write_auth_key_pair(auth_key, staging / site.auth_key_file.name)
        keys.write_key_pair(sign_key, staging / site.site_key_file.name)
        keys.write_private_pem(tls_key, staging / site.tls_key_file.name)
        keys.write_new_file(staging / site.tls_request_file.name, pem, 0o644)
        if keys_dir.exists():
            keys_dir.rmdir()  # empty (checked above)
        os.rename(staging, keys_dir)
        made[-1] = keys_dir
        payload = json.dumps(document.document(), indent=2) + "\n"
        made.append(request)
        keys.write_new_file(request, payload.encode("utf-8"), 0o644)
        record = {
            "format": FORMAT,
            "site": site_name,
            "request": str(request),
            "fingerprint": fingerprint,
            "created_at": (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat(),
        }
        temporary = site.enrolment_file.with_suffix(".json.tmp")
        made.append(temporary)
        temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, site.enrolment_file)
    except BaseException:
        for path in reversed(made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if made_root:
            shutil.rmtree(site.root, ignore_errors=True)
        raise
    return {"data": str(site.root), "site": site_name, "request": str(request), "fingerprint": fingerprint}


def init_site(
    root: Path, *, site_name: str | None, trust: list[Path] | None = None, kit: Path | None = None
) -> SiteFolder:
    """Create a site folder: settings, trusted keys (from a kit or given keys) and role tokens.

    With ``kit``, ``root`` must hold this site's enrolment (its own keys) and the kit must answer
    it; nothing is written until every check has passed.
    """
    if (root / "agent.toml").exists():
        raise OutputPathError(f"{root} is already a site folder; choose another --data or remove it")
    site = SiteFolder(root)
    enrolment = site.enrolment()
    trusted_keys = _trusted_key_files(trust, kit)
    if kit is None and enrolment is not None:
        raise UsageError(
            f"{root} is awaiting its kit (enrolled as {enrolment['site']!r}); "
            f"finish with 'genba agent init --data {root} --kit KIT', not --trust"
        )
    name = site_name or _kit_name(kit) or "site"
    AgentConfig(site=name)  # a bad site name fails before anything is written (or put into TOML)
    config_from_mapping(tomllib.loads(default_toml(name)))
    if kit is not None:
        _check_kit(site, kit, enrolment, name)
    for path in trusted_keys:
        keys.load_public_key(path)  # refuse anything that is not a public key before copying it
    for folder in (site.root, site.trusted_dir, site.tokens_dir, site.models_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for path in trusted_keys:
        shutil.copyfile(path, site.trusted_dir / path.name)
    if kit is not None:
        _install_kit(site, kit)
    else:
        keys.write_key_pair(keys.generate_signing_key(), site.site_key_file)
    for role in ROLES:
        write_token(site, role)
    site.config_file.write_text(default_toml(name), encoding="utf-8")
    return site


def kit_private_files(kit: Path) -> list[str]:
    """Every file in ``kit`` that holds a private key (a PEM or OpenSSH private key block)."""
    found = []
    for path in sorted(kit.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if _PRIVATE_MARK in data:
                found.append(path.relative_to(kit).as_posix())
    return found


def _check_kit(site: SiteFolder, kit: Path, enrolment: dict[str, Any] | None, name: str) -> None:
    """Refuse a kit that is not the answer to this folder's enrolment; write nothing."""
    private = kit_private_files(kit)
    if private:
        raise EnrolmentError(
            f"{kit} carries private keys ({', '.join(private)}): it was made by an earlier "
            "'genba provision', and a site's keys are now made at the site only; enrol with "
            f"'genba agent init --data {site.root} --site NAME --enrol-request FILE', send FILE to IT "
            "for 'genba provision add-site --request FILE', and have IT delete this kit"
        )
    if enrolment is None:
        raise EnrolmentError(
            f"{site.root} holds no enrolment, so no key for this kit: first run 'genba agent init "
            f"--data {site.root} --site NAME --enrol-request FILE', send FILE to IT, then init with "
            "the kit IT makes from it"
        )
    enrolled = enrolment["site"]
    kit_name = _kit_name(kit)
    if kit_name != enrolled:
        raise EnrolmentError(
            f"{kit} is the kit for site {kit_name!r}, but {site.root} enrolled as {enrolled!r}; "
            f"use the kit IT made from {enrolment.get('request')} (request {enrolment.get('fingerprint')})"
        )
    if name != enrolled:
        raise EnrolmentError(f"{site.root} enrolled as {enrolled!r}, not {name!r}; leave out --site")
    for file in KIT_FILES:
        if not (kit / file).is_file():
            raise EnrolmentError(f"{kit} lacks {file}; ask IT for the whole kit 'genba provision' made")
    ca = _certificate(kit / "ca.crt")
    certificate = _certificate(kit / "site-tls.crt")
    own = keys.load_ec_private_key(site.tls_key_file).public_key()
    if keys.public_key_sha256(certificate.public_key()) != keys.public_key_sha256(own):  # type: ignore[arg-type]
        raise EnrolmentError(
            f"{kit / 'site-tls.crt'} certifies another key than this site's {site.tls_key_file}: the kit "
            f"answers another request; ask IT for the kit made from request {enrolment.get('fingerprint')}"
        )
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            raise ValueError("not a CA")
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
        raise EnrolmentError(
            f"{kit / 'site-tls.crt'} is not signed by the kit's CA ({kit / 'ca.crt'})"
        ) from exc
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [attribute.value for attribute in common_names] != [enrolled]:
        raise EnrolmentError(
            f"{kit / 'site-tls.crt'} names {certificate.subject.rfc4514_string()!r}, not CN={enrolled}"
        )
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is None or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise EnrolmentError(f"{kit / 'site-tls.crt'} is not a TLS client certificate (no clientAuth usage)")
    if certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise EnrolmentError(
            f"{kit / 'site-tls.crt'} expired on {certificate.not_valid_after_utc.date()}; "
            "ask IT for a new kit"
        )
    for path in (site.auth_key_file, site.site_key_file):
        if not path.is_file():
            raise KeyFileError(f"{path} is missing from the enrolled folder {site.root}; enrol again")


def _install_kit(site: SiteFolder, kit: Path) -> None:
    """What joining the federation needs from the kit: its settings, the CA, the client certificate."""
    for name, target in (
        ("kit.toml", site.kit_file),
        ("ca.crt", site.ca_file),
        ("site-tls.crt", site.tls_cert_file),
    ):
        shutil.copyfile(kit / name, target)


def _certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise EnrolmentError(f"{path} is not a PEM certificate") from exc


def write_token(site: SiteFolder, role: str) -> Path:
    """A fresh random token; readable by the role's group (``genba-ROLE``) when that group exists."""
    path = site.token_file(role)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_MODE_PRIVATE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    group = _role_group(role)
    if group is not None:
        os.chown(temporary, -1, group)
        os.chmod(temporary, TOKEN_MODE_GROUP)
    os.replace(temporary, path)
    return path


def _role_group(role: str) -> int | None:
    try:
        return grp.getgrnam(f"genba-{role}").gr_gid
    except KeyError:
        return None


def _trusted_key_files(trust: list[Path] | None, kit: Path | None) -> list[Path]:
    files = list(trust or [])
    if kit is not None:
        if not (kit / "kit.toml").is_file():
            raise UsageError(f"{kit} is not a site kit (no kit.toml); pass the folder 'genba provision' made")
        files += sorted(p for p in (kit / "trusted").glob("*") if p.suffix in (".pem", ".pub"))
    if not files:
        raise UsageError("a site needs at least one trusted key: pass --kit DIR or --trust PUBKEY")
    for path in files:
        if not path.is_file():
            raise KeyFileError(f"trusted key {path} not found")
    return files


def _kit_name(kit: Path | None) -> str | None:
    if kit is None:
        return None
    try:
        document = tomllib.loads((kit / "kit.toml").read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{kit / 'kit.toml'} is not valid TOML: {exc}"]) from exc
    site = document.get("site", {})
    return site.get("name") if isinstance(site, dict) else None
