"""A signed bundle delivered through the federation becomes this site's candidate.

IT's server sends the canonical manifest, its signature and the files the site does not hold
yet (a global head swap sends only its ``head.onnx``: the backbone is the one IT shipped when
the site was set up). The site checks the signature against its trusted keys before it
writes anything, reassembles the bundle in ``federation/incoming/`` from the files it was sent
and the byte-identical files of its installed bundles, and installs it through the agent
(its API when it serves, else the folder under the site's lock): the same checks as
``genba agent install``, so an older bundle is refused unless its signed lineage marks a
rollback. The answer is a receipt code from :data:`genba.protocol.RECEIPT_OUTCOMES`; the
reason for a refusal stays in the site's audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_agent.site import SiteFolder
from genba import keys
from genba.bundle import MANIFEST_NAME, SIGNATURE_NAME, Manifest, canonical_bytes, read_manifest, sha256_file
from genba.errors import GenbaError, IntegrityError
from genba.protocol import RECEIPT_OUTCOMES

log = logging.getLogger(__name__)


class MissingFilesError(GenbaError):
    """The delivery left out files this site was expected to hold, and it does not."""


def receive_bundle(data_dir: Path, content: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Install the delivered bundle as the candidate; the receipt is ``{version, outcome}``."""
    site = SiteFolder(Path(data_dir)).require_initialized()
    version, outcome, reason = 0, "failed", ""
    try:
        manifest, raw, signature, files = _read_offer(content)
        version = manifest.model.release
        keys.verify_signature(
            raw, signature, site.trusted_keys(), manifest.signer.key_id if manifest.signer else None
        )
        outcome = _install(site, manifest, raw, signature, files)
    except MissingFilesError as error:
        outcome, reason = "missing-files", str(error)
    except GenbaError as error:
        outcome, reason = "refused", str(error)
    except Exception as error:  # a receipt must always go back; the reason stays here
        log.exception("a delivered bundle could not be installed")
        outcome, reason = "failed", f"{type(error).__name__}: {error}"
    _audit(site, version, outcome, reason)
    return {"version": version, "outcome": RECEIPT_OUTCOMES.index(outcome)}


def _read_offer(
    content: Mapping[str, Mapping[str, Any]],
) -> tuple[Manifest, bytes, bytes, dict[str, bytes]]:
    offer, sent = content.get("bundle") or {}, content.get("files") or {}
    raw, signature = offer.get("manifest"), offer.get("signature")
    names, blobs = sent.get("names") or [], sent.get("contents") or []
    if not isinstance(raw, bytes) or not isinstance(signature, bytes) or len(names) != len(blobs):
        raise IntegrityError("the delivery is malformed (no manifest, signature or matching files)")
    parsed = json.loads(raw.decode("utf-8"))
    if not isinstance(parsed, dict) or canonical_bytes(parsed) != raw:
        raise IntegrityError("the delivered manifest is not canonical")
    return Manifest.from_json(parsed), raw, signature, dict(zip(names, blobs, strict=True))


def _install(
    site: SiteFolder, manifest: Manifest, raw: bytes, signature: bytes, files: Mapping[str, bytes]
) -> str:
    from edge_agent.operate import on_site
    from edge_agent.store import SiteStore

    sha = hashlib.sha256(raw).hexdigest()
    with SiteStore.read_only(site.store_file) as store:
        slots = store.slots()
        held = {row.id: row.manifest_sha256 for row in store.list_models()}
    if any(
        slot is not None and held.get(slot.model_id) == sha for slot in (slots.production, slots.candidate)
    ):
        return "already-installed"
    incoming = site.root / "federation" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="bundle-", dir=incoming))
    try:
        _assemble(site, staging, manifest, raw, signature, files)
        on_site(
            site.root,
            lambda client: client.install(staging),
            lambda agent: agent.install(staging, actor="federation"),
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return "installed"


def _assemble(
    site: SiteFolder,
    staging: Path,
    manifest: Manifest,
    raw: bytes,
    signature: bytes,
    files: Mapping[str, bytes],
) -> None:
    listed = manifest.files
    unlisted = sorted(set(files) - set(listed))
    if unlisted:
        raise IntegrityError(f"the delivery carries a file its signed manifest does not list: {unlisted[0]}")
    local = _local_files(site)
    missing = []
    for name, entry in sorted(listed.items()):
        target = staging / name
        if not target.resolve().is_relative_to(staging.resolve()):
            raise IntegrityError(f"the signed manifest lists a file outside the bundle: {name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in files:
            target.write_bytes(files[name])
        elif entry.sha256 in local:
            shutil.copyfile(local[entry.sha256], target)
        else:
            missing.append(name)
    if missing:
        raise MissingFilesError(
            f"this site does not hold {', '.join(missing)} of the delivered bundle; "
            "ask IT to ship the full bundle ('genba agent install')"
        )
    (staging / MANIFEST_NAME).write_bytes(raw)
    (staging / SIGNATURE_NAME).write_bytes(signature)


def _local_files(site: SiteFolder) -> dict[str, Path]:
    """The files of this site's installed bundles by SHA-256 (as their manifests list them)."""
    found: dict[str, Path] = {}
    for manifest_file in sorted(site.models_dir.glob(f"*/{MANIFEST_NAME}")):
        try:
            listed = read_manifest(manifest_file.parent)[0].files
        except (OSError, GenbaError):
            continue
        for name, entry in listed.items():
            path = manifest_file.parent / name
            sha = entry.sha256
            if sha not in found and path.is_file() and sha256_file(path) == sha:
                found[sha] = path
    return found


def _audit(site: SiteFolder, version: int, outcome: str, reason: str) -> None:
    from edge_agent.store import SiteStore

    with SiteStore(site.store_file) as store:
        store.append_audit(
            "federated_bundle_received",
            "federation",
            {"version": version, "outcome": outcome, **({"reason": reason} if reason else {})},
        )
