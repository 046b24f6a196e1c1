"""Drift statistics: is this window of production answers drawn from the same place as the reference?

Each production answer is summarised by a short feature vector: the top-class probability, each
class's probability, and the embedding projected on a few fixed random directions (seeded, so the
same for every site and every run; chosen without looking at any data, so selecting them cannot bias
the tests). A window is compared with the reference feature by feature with the two-sample
Kolmogorov–Smirnov test, and on the mix of predicted classes with a chi-square test of homogeneity;
the p-values are corrected for testing several things at once with Benjamini–Hochberg (scipy).
The smallest corrected p-value decides: ``drift`` at or below ``alpha``,
``warning`` at or below ``warning_alpha``, else ``ok``. With no drift a window is flagged ``drift``
about an ``alpha`` share of the time (``bench/drift.py`` measures it on the packaged model).

Before a model has a production reference, its first window is compared with the reference
statistics the export wrote into the manifest (the top-score histogram, chi-square goodness of fit).
The export's validation data is not this site's production, so that comparison can raise a warning,
never drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

STATUSES: Final = ("ok", "warning", "drift")
_PROJECTION_SEED: Final = 20261129
_MIN_EXPECTED: Final = 5.0  # chi-square needs about five expected items per bin
_MATCH_SEED: Final = 20261205
#: A stratum the reference holds fewer rows of is compared with the whole reference.
MIN_STRATUM_ROWS: Final = 20


@dataclass(frozen=True)
class DriftCheck:
    """The outcome of one window: its status, and the test that decided it."""

    status: str
    reference: str  # "production" (the model's first window) or "manifest" (the export's statistics)
    feature: str  # the feature with the smallest corrected p-value
    statistic: float
    p_value: float  # corrected for the number of tests
    tests: int
    items: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def feature_names(labels: Sequence[str], projections: int) -> list[str]:
    return ["top_score", *(f"p:{label}" for label in labels), *(f"proj:{i}" for i in range(projections))]


def projection_matrix(dim: int, count: int) -> np.ndarray:
    """``[dim, count]`` unit directions, the same for every model of that embedding size."""
    directions = np.random.default_rng(_PROJECTION_SEED + dim).standard_normal((dim, count))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def features(
    probabilities: np.ndarray | None, embedding: np.ndarray | None, projections: int
) -> np.ndarray | None:
    """``[n, f]`` float32 features of a batch of answers (None when the model gives neither output)."""
    parts = []
    if probabilities is not None:
        scores = np.asarray(probabilities, dtype=np.float32)
        parts += [scores.max(axis=1, keepdims=True), scores]
    if embedding is not None and projections > 0:
        vectors = np.asarray(embedding, dtype=np.float32)
        parts.append(vectors @ projection_matrix(vectors.shape[1], projections).astype(np.float32))
    if not parts:
        return None
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def compare_windows(
    reference: np.ndarray,
    window: np.ndarray,
    names: Sequence[str],
    *,
    alpha: float,
    warning_alpha: float,
    reference_strata: Sequence[str] | None = None,
    window_strata: Sequence[str] | None = None,
) -> DriftCheck:
    """Two-sample KS per feature and chi-square on the predicted classes, Benjamini–Hochberg across all.

    With strata (one key per row, e.g. the production line), the window is compared with a sample of
    the reference drawn stratum by stratum in the window's own proportions (``matched_reference``): a
    window that happens to come mostly from one line is compared with that line's reference answers,
    so traffic arriving in blocks by line does not read as drift while a change within a line does.
    """
    from scipy import stats

    if reference.shape[1] != window.shape[1] or reference.shape[1] != len(names):
        raise ValueError(f"features differ: reference {reference.shape}, window {window.shape}")
    if reference_strata is not None and window_strata is not None:
        reference = matched_reference(reference, reference_strata, window_strata)
    tests = [(name, stats.ks_2samp(reference[:, j], window[:, j])) for j, name in enumerate(names)]
    classes = [j for j, name in enumerate(names) if name.startswith("p:")]
    if len(classes) > 1:
        tests.append(("predicted_label", _class_mix_test(reference[:, classes], window[:, classes])))
    raw = np.array([float(result.pvalue) for _, result in tests])
    corrected = stats.false_discovery_control(raw, method="bh") if len(raw) > 1 else raw
    best = int(np.argmin(corrected))
    p_value = float(min(1.0, corrected[best]))
    return DriftCheck(
        status=status_for(p_value, alpha=alpha, warning_alpha=warning_alpha),
        reference="production",
        feature=tests[best][0],
        statistic=round(float(tests[best][1].statistic), 6),
        p_value=p_value,
        tests=len(raw),
        items=int(window.shape[0]),
    )


def matched_reference(
    reference: np.ndarray, reference_strata: Sequence[str], window_strata: Sequence[str]
) -> np.ndarray:
    """Reference rows drawn per stratum in the window's proportions, as many as the reference allows.

    Strata are tag values joined by ``/`` (``line-1/night``). A stratum with fewer than
    ``MIN_STRATUM_ROWS`` reference rows draws from the coarser stratum that shares its leading tags
    (``line-1/`` when the reference never saw line 1 at night), and a stratum with no such coarser
    one from the whole reference: a new line is judged against everything seen, which is what a
    plant wants to hear about. The draw is seeded, so a window's check is reproducible.
    """
    if len(reference_strata) != len(reference) or not len(window_strata):
        raise ValueError("strata must name one stratum per row")
    keys = np.asarray(reference_strata)
    wanted: dict[str, int] = {}
    for key in window_strata:
        wanted[key] = wanted.get(key, 0) + 1
    pools = {key: _stratum_rows(keys, key) for key in wanted}
    total = len(window_strata)
    size = min(len(keys), *(len(pools[k]) * total // n for k, n in wanted.items()))
    rng = np.random.default_rng(_MATCH_SEED)
    rows = [
        rng.choice(pools[key], size=min(len(pools[key]), max(1, size * count // total)), replace=False)
        for key, count in sorted(wanted.items())
    ]
    return reference[np.concatenate(rows)]


def _stratum_rows(keys: np.ndarray, key: str) -> np.ndarray:
    """The reference rows of ``key``, or of its nearest coarser stratum with enough of them."""
    parts = key.split("/")
    for depth in range(len(parts), 0, -1):
        if depth == len(parts):
            rows = np.flatnonzero(keys == key)
        else:
            prefix = "/".join(parts[:depth]) + "/"
            rows = np.flatnonzero(np.char.startswith(keys.astype(str), prefix))
        if len(rows) >= MIN_STRATUM_ROWS:
            return rows
    return np.arange(len(keys))


def _class_mix_test(reference: np.ndarray, window: np.ndarray) -> Any:
    """Chi-square test of homogeneity on how often each class is predicted."""
    from scipy import stats

    width = reference.shape[1]
    counts = np.stack(
        [
            np.bincount(reference.argmax(axis=1), minlength=width),
            np.bincount(window.argmax(axis=1), minlength=width),
        ]
    )
    seen = counts.sum(axis=0) > 0
    if seen.sum() < 2:  # one class predicted throughout: nothing to compare
        return stats.chi2_contingency(np.array([[1, 1], [1, 1]]))
    return stats.chi2_contingency(counts[:, seen])


def compare_with_manifest(
    top_scores: np.ndarray, reference_stats: Mapping[str, Any], *, warning_alpha: float
) -> DriftCheck | None:
    """The first window's top scores against the export's histogram; None when the manifest has none."""
    from scipy import stats

    histogram = (reference_stats.get("scores") or {}).get("histogram") or {}
    counts = np.asarray(histogram.get("counts") or [], dtype=np.float64)
    edges = np.asarray(histogram.get("edges") or [], dtype=np.float64)
    if counts.sum() <= 0 or len(edges) != len(counts) + 1:
        return None
    observed, _ = np.histogram(np.clip(top_scores, edges[0], edges[-1]), bins=edges)
    expected = counts / counts.sum() * len(top_scores)
    observed_bins, expected_bins = _merge_small_bins(observed.astype(np.float64), expected)
    if len(observed_bins) < 2:
        return None
    result = stats.chisquare(observed_bins, expected_bins)
    p_value = float(result.pvalue)
    status = "warning" if p_value <= warning_alpha else "ok"  # never "drift": not this site's data
    return DriftCheck(status, "manifest", "top_score", round(float(result.statistic), 6), p_value, 1,
                      int(len(top_scores)))  # fmt: skip


def status_for(p_value: float, *, alpha: float, warning_alpha: float) -> str:
    if p_value <= alpha:
        return "drift"
    return "warning" if p_value <= warning_alpha else "ok"


def _merge_small_bins(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent bins merged until each expects at least five items (the last joins its neighbour)."""
    merged_observed: list[float] = []
    merged_expected: list[float] = []
    held_observed = held_expected = 0.0
    for seen, wanted in zip(observed, expected, strict=True):
        held_observed += seen
        held_expected += wanted
        if held_expected >= _MIN_EXPECTED:
            merged_observed.append(held_observed)
            merged_expected.append(held_expected)
            held_observed = held_expected = 0.0
    if (held_expected > 0 or held_observed > 0) and merged_expected:
        merged_observed[-1] += held_observed
        merged_expected[-1] += held_expected
    return np.asarray(merged_observed), np.asarray(merged_expected)
