"""A site's USB kit: everything a shop-floor PC needs to install Genba and start serving, offline.

Layout of ``OUT``::

    install.sh      the installer (it checks SHA256SUMS below before anything else)
    SHA256SUMS      sha256 of every other file of the kit
    README.txt      the commands a site engineer runs, in order
    wheelhouse/     the role's wheels, pinned requirements and their own SHA256SUMS
    site-kit/       the site's kit from IT (``genba provision add-site``: no private key in it)
    trusted/        public keys of bundle signers, for a standalone site without a site kit
    bundles/        signed bundles, each checked against the kit's trusted keys

Every input is checked before anything is written: the wheelhouse against its own checksums, the
site kit for its settings and for any private key (a site kit holds none), every bundle's hashes
and signature against the trusted keys the site will use. The kit appears only when complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genba.checksums import verify_checksums, write_checksums
from genba.errors import ConfigError, UsageError
from genba.wheelhouse import MANIFEST, staged_folder


@dataclass(frozen=True)
class UsbKitConfig:
    wheelhouse: Path
    out: Path
    site_kit: Path | None = None
    bundles: tuple[Path, ...] = ()
    trust: tuple[Path, ...] = ()  # signers' public keys, for a site without a site kit

    def problems(self) -> list[str]:
        problems = []
        if not (self.wheelhouse / MANIFEST).is_file():
            problems.append(
                f"{self.wheelhouse} is not a wheelhouse (no {MANIFEST}); make one with make wheelhouse"
            )
        if self.site_kit is not None and not (self.site_kit / "kit.toml").is_file():
            problems.append(
                f"{self.site_kit} is not a site kit (no kit.toml); IT makes one with genba provision"
            )
        problems += [f"bundle {path} does not exist" for path in self.bundles if not path.exists()]
        problems += [f"trusted key {path} does not exist" for path in self.trust if not path.is_file()]
        if self.bundles and self.site_kit is None and not self.trust:
            problems.append("bundles need --site-kit or --trust: the keys that must have signed them")
        return problems

    def validate(self) -> UsbKitConfig:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self


def build_usb_kit(config: UsbKitConfig) -> dict[str, Any]:
    """Check every input, then write the kit ``config.out``; returns a summary."""
    config.validate()
    verify_checksums(config.wheelhouse)
    if config.site_kit is not None:
        refuse_private_keys(config.site_kit)
    trusted = trusted_key_files(config)
    bundles = [_verified_bundle(path, trusted) for path in config.bundles]
    with staged_folder(config.out) as staging:
        shutil.copytree(config.wheelhouse, staging / "wheelhouse")
        shutil.copy2(config.wheelhouse / "install.sh", staging / "install.sh")
        if config.site_kit is not None:
            shutil.copytree(config.site_kit, staging / "site-kit")
        for key in config.trust:
            (staging / "trusted").mkdir(exist_ok=True)
            shutil.copy2(key, staging / "trusted" / key.name)
        for path in config.bundles:
            _copy_bundle(path, staging / "bundles")
        described = json.loads((config.wheelhouse / MANIFEST).read_text(encoding="utf-8"))
        (staging / "README.txt").write_text(_readme(config, described), encoding="utf-8")
        sums_sha256 = write_checksums(staging)
    return {
        "path": str(config.out),
        "roles": described["roles"],
        "bundles": bundles,
        "site_kit": config.site_kit is not None,
        "sha256sums_sha256": sums_sha256,
    }


def refuse_private_keys(folder: Path) -> None:
    """A site kit carries public material only; a private key in it goes no further."""
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise UsageError(f"{path} is a link; a site kit holds plain files only")
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes()[:4096]:
            raise UsageError(f"{path} holds a private key; a site kit holds none: ask IT for a new kit")


def trusted_key_files(config: UsbKitConfig) -> list[Path]:
    keys = list(config.trust)
    if config.site_kit is not None:
        keys += sorted(p for p in (config.site_kit / "trusted").glob("*") if p.suffix in (".pem", ".pub"))
    return keys


def _verified_bundle(path: Path, trusted: list[Path]) -> dict[str, Any]:
    from genba import keys
    from genba.bundle import open_verified

    if not trusted:
        raise UsageError("the site kit trusts no signer (its trusted/ is empty), so no bundle can be checked")
    with open_verified(path, [keys.load_public_key(key) for key in trusted]) as verified:
        model = verified.manifest.model
        return {"bundle": path.name, "model": model.name, "version": model.release}


def _copy_bundle(path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    if (folder / path.name).exists():
        raise UsageError(f"two bundles are named {path.name}; rename one")
    if path.is_dir():
        shutil.copytree(path, folder / path.name)
    else:
        shutil.copy2(path, folder / path.name)


def _readme(config: UsbKitConfig, described: dict[str, Any]) -> str:
    """``described``: the wheelhouse's own description (wheelhouse.json), not a bundle manifest."""
    role = ",".join(described["roles"])
    lines = [
        f"Genba {described['genba']} offline kit, role {role}, for Linux x86_64 with Python "
        f"{' or '.join(described['pythons'])}.",
        "",
        "On the shop-floor PC, from this folder (docs/INSTALL.md has the whole story):",
        f"  sudo bash install.sh --role {role}   # checks SHA256SUMS, then installs into /opt/genba",
        "  sudo install -d -o genba -g genba -m 0751 /var/lib/genba",
    ]
    data = "/var/lib/genba/site"
    if config.site_kit is not None:
        lines.append("  # the site enrolled earlier (genba agent init --enrol-request); IT's answer:")
        lines.append(f"  sudo -u genba /opt/genba/bin/genba agent init --data {data} --kit site-kit")
    for key in config.trust[:1]:
        lines.append(
            f"  sudo -u genba /opt/genba/bin/genba agent init --data {data} --trust trusted/{key.name}"
        )
    for bundle in config.bundles:
        lines.append(
            f"  sudo -u genba /opt/genba/bin/genba agent install --data {data} bundles/{bundle.name}"
        )
    return "\n".join(lines) + "\n"
