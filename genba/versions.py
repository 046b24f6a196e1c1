"""Model versions that a site and IT allocate without ever colliding.

IT's releases are numbered 1, 2, 3, ... in its registry. A site's own candidates are
revisions of the release they descend from: ``3.1``, ``3.2``, ... (``model.revision`` in the
manifest; absent for a release). IT never writes a revision and a site never writes a
release, so a site candidate and IT's next release cannot share a version, and a site
allocates revisions from its own store, so two jobs from one parent get two versions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from genba.errors import UsageError

_TEXT = re.compile(r"^v?(\d{1,9})(?:\.(\d{1,9}))?$")


@dataclass(frozen=True, order=True)
class ModelVersion:
    release: int
    revision: int = 0  # 0: IT's release itself; 1, 2, ...: the site's candidates from it

    def __str__(self) -> str:
        return f"{self.release}.{self.revision}" if self.revision else str(self.release)

    @property
    def is_release(self) -> bool:
        return self.revision == 0

    @classmethod
    def of(cls, model: Mapping[str, Any]) -> ModelVersion:
        """The version of a manifest's ``model`` block (or a row with ``version`` and ``revision``)."""
        return cls(int(model.get("version") or 0), int(model.get("revision") or 0))

    @classmethod
    def parse(cls, text: str | int) -> ModelVersion:
        """``3``, ``v3``, ``3.1``: what a supervisor types to name a version."""
        match = _TEXT.match(str(text).strip())
        if match is None:
            raise UsageError(f"{text!r} is not a model version; write it as 3 or 3.1")
        return cls(int(match.group(1)), int(match.group(2) or 0))

    def json_fields(self) -> dict[str, int | str]:
        """What the API and reports show: the release, the revision and the label people read."""
        return {"version": self.release, "revision": self.revision, "version_label": str(self)}

    def manifest_fields(self) -> dict[str, int]:
        """The ``model`` block's version fields: a release carries no ``revision`` key."""
        return {"version": self.release, **({"revision": self.revision} if self.revision else {})}


def next_site_revision(parent: ModelVersion, installed: Iterable[ModelVersion]) -> ModelVersion:
    """The site's next candidate from ``parent``: a new revision of the release it descends from."""
    taken = [v.revision for v in installed if v.release == parent.release]
    return ModelVersion(parent.release, max([parent.revision, *taken]) + 1)
