"""Synthetic shop-floor data shared by the demo, the tests and the benchmarks."""

from export.datasets.shopfloor import (
    GENERATOR_VERSION,
    LABELS,
    SITES,
    Report,
    Split,
    central_split,
    sample_per_class,
    site_split,
    write_jsonl,
)

__all__ = [
    "GENERATOR_VERSION",
    "LABELS",
    "SITES",
    "Report",
    "Split",
    "central_split",
    "sample_per_class",
    "site_split",
    "write_jsonl",
]
