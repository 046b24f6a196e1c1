"""Installed bundles: verified copies under ``DATA/models`` and the sessions made from them.

A bundle offered for install is verified against the site's trusted keys, copied
into a hidden staging folder, renamed into place, and verified again from the
copy, because the copy is what will be loaded, now and after every restart.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from genba import keys
from genba.bundle import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    VerifiedBundle,
    open_verified,
    verify_directory,
)
from genba.errors import DiskFullError, GenbaError, SignatureError
from genba.runtime.config import RuntimeConfig
from genba.runtime.model import BundleModel
from genba.versions import ModelVersion

log = logging.getLogger(__name__)

#: What a full disk says: no space, a quota reached, or the process's file-size limit (RLIMIT_FSIZE).
NO_SPACE_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@dataclass(frozen=True)
class BundleIdentity:
    name: str
    version: ModelVersion
    manifest_sha256: str
    signer_key_id: str | None
    manifest: Manifest

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def rollback(self) -> bool:
        return bool(self.manifest.lineage.rollback)


def identity_of(bundle: VerifiedBundle) -> BundleIdentity:
    model = bundle.manifest.model
    raw = (bundle.path / MANIFEST_NAME).read_bytes()
    return BundleIdentity(
        name="model" if model.name is None else model.name,
        version=model.version,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        signer_key_id=bundle.signer_key_id,
        manifest=bundle.manifest,
    )


@dataclass
class LoadedModel:
    """A model row from the store with its live ONNX Runtime sessions."""

    model_id: int
    identity: BundleIdentity
    model: BundleModel

    @property
    def version(self) -> ModelVersion:
        return self.identity.version

    def describe(self) -> dict[str, Any]:
        manifest = self.identity.manifest
        served = self.model.served.to_json()
        return {
            "model_id": self.model_id,
            "name": self.identity.name,
            **self.identity.version.json_fields(),
            "task": manifest.task,
            "labels": list(manifest.labels or []),
            "precision": served["precision"],
            "signer_key_id": self.identity.signer_key_id,
            "signature_verified": True,
            "lineage": manifest.lineage.to_json(),
            "provider": self.model.provider,
            "io_binding": bool(getattr(self.model, "io_binding", False)),
            # Which of the bundle's variants serves here, why, and where its nodes run on CUDA.
            "variant": served["variant"],
            "variant_reason": served["reason"],
            "placement": served["placement"],
        }


class ModelLibrary:
    """Installed bundles. ``trusted`` are IT's keys; ``site_key`` may sign this site's own candidates only."""

    def __init__(
        self,
        models_dir: Path,
        trusted: list[Any],
        runtime: RuntimeConfig,
        site_key: Any | None = None,
        site_name: str | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.trusted = [*trusted, site_key] if site_key is not None else list(trusted)
        self.runtime = runtime
        self.site_key_id = keys.key_id(site_key) if site_key is not None else None
        self.site_name = site_name

    def check_signer(self, bundle: VerifiedBundle) -> VerifiedBundle:
        """A bundle signed with the site's own key must be a training candidate of this very site."""
        if not self._signed_here(bundle):
            return bundle
        lineage = bundle.manifest.lineage
        source = lineage.source or {}
        if not (
            source.get("kind") == "site-training"
            and source.get("site") == self.site_name
            and lineage.parent is not None
        ):
            raise SignatureError(
                "bundle is signed with this site's own key, which signs only this site's "
                "training candidates; bundles from IT must carry IT's signature"
            )
        return bundle

    def check_offer(self, bundle: VerifiedBundle) -> VerifiedBundle:
        """What an offered bundle must be on top of its signer: a version its signer allocates.

        The site's own candidates are revisions and IT's bundles releases (``genba.versions``), so
        neither can take a version the other will allocate. Checked when a bundle is offered, not
        when an installed copy loads: candidates made before revisions existed keep loading.
        """
        version = self.check_signer(bundle).manifest.version
        if self._signed_here(bundle) and version.is_release:
            raise SignatureError(
                f"bundle is signed with this site's own key but its version {version} is a release "
                "number, which only IT allocates; site candidates are revisions such as 3.1"
            )
        if not self._signed_here(bundle) and not version.is_release:
            raise SignatureError(
                f"bundle version {version} is a site revision but this site did not sign it; "
                "IT's bundles carry whole release numbers"
            )
        return bundle

    def _signed_here(self, bundle: VerifiedBundle) -> bool:
        return self.site_key_id is not None and bundle.signer_key_id == self.site_key_id

    def inspect(self, source: Path) -> BundleIdentity:
        """Verify an offered bundle (directory or archive) and say what it is, without keeping it."""
        with open_verified(source, self.trusted) as bundle:
            return identity_of(self.check_offer(bundle))

    def copy_in(
        self, source: Path, accept: Callable[[BundleIdentity], None] | None = None
    ) -> tuple[VerifiedBundle, BundleIdentity]:
        """Verify ``source`` and copy it into the library; returns the verified copy.

        ``accept`` sees what the offer is once it has verified and may refuse it (raise)
        before anything is written. A disk that fills up meanwhile refuses the install whole
        (``DiskFullError``): the half-made copy is removed, and the models in the slots keep serving.
        """
        try:
            return self._copy_in(source, accept)
        except OSError as exc:
            if exc.errno not in NO_SPACE_ERRNOS:
                raise
            free = _megabytes_free(self.models_dir)
            raise DiskFullError(
                f"no space left to install {source.name} in {self.models_dir} ({free} free); "
                "free some space and install it again: the model in production keeps serving"
            ) from exc

    def _copy_in(
        self, source: Path, accept: Callable[[BundleIdentity], None] | None
    ) -> tuple[VerifiedBundle, BundleIdentity]:
        with open_verified(source, self.trusted) as offered:
            identity = identity_of(self.check_offer(offered))
            if accept is not None:
                accept(identity)
            target = (
                self.models_dir
                / f"{_safe(identity.name)}-v{identity.version}-{identity.manifest_sha256[:12]}"
            )
            if target.exists():
                try:
                    return self._verified(target), identity  # left complete by an earlier install
                except GenbaError:
                    shutil.rmtree(target)  # a damaged copy: replace it from the verified offer
            return self._copy(offered, target), identity

    def _copy(self, offered: VerifiedBundle, target: Path) -> VerifiedBundle:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self.models_dir))
        try:
            for name in (*offered.manifest.files, MANIFEST_NAME, SIGNATURE_NAME):
                destination = staging / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(offered.path / name, destination)
            copied = self._verified(staging)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return dataclasses.replace(copied, path=target)

    def load(self, model_id: int, path: Path) -> LoadedModel:
        """Verify the installed copy again (it sits on disk between restarts) and open its sessions.

        ``path`` may be relative to the models folder (how the store records it, so the
        whole site folder can move) or absolute.
        """
        return self.open(model_id, self._verified(self.models_dir / path))

    def open(self, model_id: int, bundle: VerifiedBundle) -> LoadedModel:
        """Sessions for a copy verified just now (the graphs' bytes are hash-checked as they load)."""
        model = BundleModel(bundle, self.runtime)
        log.info("loaded %s from %s on %s", bundle.manifest.model.to_json(), bundle.path.name, model.provider)
        return LoadedModel(model_id=model_id, identity=identity_of(bundle), model=model)

    def _verified(self, path: Path) -> VerifiedBundle:
        return self.check_signer(verify_directory(path, self.trusted))

    def clean_staging(self) -> None:
        """Remove half-copied installs left by a crash (they never became a model)."""
        for leftover in self.models_dir.glob(".install-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _megabytes_free(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:.1f} MB"
    except OSError:
        return "no space"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "model"
