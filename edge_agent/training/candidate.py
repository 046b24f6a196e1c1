"""A site's training candidate: a head swap of its production bundle, signed with the site key.

The writing itself is :mod:`export.head_swap` (the federated server writes global bundles the
same way, signed with IT's key); this module adds what a site's lineage records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from export.graphs import HeadWeights
from export.head_swap import head_file, parent_reference, write_head_swap
from genba.bundle import Manifest, VerifiedBundle
from genba.versions import ModelVersion

__all__ = ["CandidateSource", "head_file", "parent_reference", "write_head_candidate"]


@dataclass(frozen=True)
class CandidateSource:
    """Where a candidate came from, as its signed lineage records it."""

    site: str
    labels: int
    seed: int
    mode: str = "head"
    #: What the site's unlabelled reports did (``--unlabelled``): method, how many, how long.
    unlabelled: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        lineage = {
            "kind": "site-training",
            "site": self.site,
            "mode": self.mode,
            "labels": self.labels,
            "seed": self.seed,
        }
        if self.unlabelled is not None:
            keep = ("method", "texts", "characters", "pseudo_labels", "seconds")
            lineage["unlabelled"] = {k: self.unlabelled[k] for k in keep if k in self.unlabelled}
        return lineage


def write_head_candidate(
    parent: VerifiedBundle,
    weights: HeadWeights,
    out: Path,
    signing_key: Ed25519PrivateKey,
    *,
    source: CandidateSource,
    version: ModelVersion,
    report: Mapping[str, Any],
    now: dt.datetime | None = None,
    probe: np.ndarray | None = None,
) -> Manifest:
    """Write the candidate at ``out`` as the site's ``version``; returns its final manifest."""
    return write_head_swap(
        parent,
        weights,
        out,
        signing_key,
        source=source.to_json(),
        report_key="site_training",
        report=report,
        version=version,
        now=now,
        probe=probe,
    )
