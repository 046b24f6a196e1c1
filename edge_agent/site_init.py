"""Creating a site folder (``genba agent init``): settings, trusted keys and one token per role."""

from __future__ import annotations

import grp
import os
import secrets
import shutil
import tomllib
from pathlib import Path

from edge_agent.config import AgentConfig, config_from_mapping, default_toml
from edge_agent.site import ROLES, TOKEN_MODE_GROUP, TOKEN_MODE_PRIVATE, SiteFolder
from genba import keys
from genba.errors import ConfigError, KeyFileError, OutputPathError, UsageError


def init_site(
    root: Path, *, site_name: str | None, trust: list[Path] | None = None, kit: Path | None = None
) -> SiteFolder:
    """Create a site folder: settings, trusted keys (from a kit or given keys) and role tokens."""
    if (root / "agent.toml").exists():
        raise OutputPathError(f"{root} is already a site folder; choose another --data or remove it")
    trusted_keys = _trusted_key_files(trust, kit)
    name = site_name or _kit_name(kit) or "site"
    site = SiteFolder(root)
    AgentConfig(site=name)  # a bad site name fails before anything is written (or put into TOML)
    config_from_mapping(tomllib.loads(default_toml(name)))
    for folder in (site.root, site.trusted_dir, site.tokens_dir, site.models_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for path in trusted_keys:
        keys.load_public_key(path)  # refuse anything that is not a public key before copying it
        shutil.copyfile(path, site.trusted_dir / path.name)
    _site_signing_key(site, kit)
    if kit is not None:
        _federation_files(site, kit)
    for role in ROLES:
        write_token(site, role)
    site.config_file.write_text(default_toml(name), encoding="utf-8")
    return site


def _site_signing_key(site: SiteFolder, kit: Path | None) -> None:
    """The kit's site key when provisioned by IT, else a fresh one for a standalone site."""
    provisioned = kit / "site-sign.pem" if kit is not None else None
    if provisioned is not None and provisioned.is_file():
        key = keys.load_private_key(provisioned)
    else:
        key = keys.generate_signing_key()
    keys.write_key_pair(key, site.site_key_file)


def _federation_files(site: SiteFolder, kit: Path) -> None:
    """What joining the federation needs from a provisioned kit: its settings, the CA, the auth key."""
    shutil.copyfile(kit / "kit.toml", site.kit_file)
    for name, target in (
        ("ca.crt", site.ca_file),
        ("site-auth.pub", site.auth_key_file.with_name("site-auth.pub")),
    ):
        if (kit / name).is_file():
            shutil.copyfile(kit / name, target)
    if (kit / "site-auth").is_file():
        fd = os.open(site.auth_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write((kit / "site-auth").read_bytes())


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
