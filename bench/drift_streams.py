"""Block-correlated shop-floor streams for ``bench/drift.py``, and the drift monitor replayed offline.

Traffic reaches a site in blocks: a production line reports for a while, then the next; a shift
runs every line, then the next shift takes over. Lines and shifts differ in content, so a window of
such a stream is never an iid draw from the site:

* a line makes its own parts: every part word of a site (``SITE_PARTS``) belongs to one of three
  lines (the i-th part word, in table order, to line ``i % 3 + 1``); a report naming a part is that
  line's, a report naming none (about half) is put on a line by a hash of its text. Part words
  alone hardly move the model's scores, so a line also has its own defect mix (``LINE_FACTORS``);
* a shift has its own defect mix (``SHIFT_FACTORS``: the swing shift dents and misaligns more, the
  night shift finds more contamination and missing parts).

Reports are resampled by true label with probability the site's prior times the line's factor
raised to ``line_contrast`` times the shift's raised to ``shift_contrast`` (0: no difference).

A stream is a sequence of blocks of ``block_items`` reports, each from one (line, shift): each
shift runs ``shift_blocks`` blocks cycling line-1, line-2, line-3, then the next shift (day, swing,
night, day, ...); a stream starts at a random block of that cycle. A shifted stream switches to
another site's reports (another vocabulary and class mix) at a block boundary and keeps the same
line/shift cycle. Within a stream reports are drawn without replacement from each (line, label)
bucket until it runs out, then the bucket is reshuffled.

``replay`` is the monitor offline, on features computed once per report: the first
``reference_windows`` windows are the reference, every following contiguous window is compared with
it (``edge_agent.drift.compare_windows``, stratified on the ``strata`` group tags when given), and a
window found to drift raises an alarm only when none of the previous ``clear_windows`` windows did
drift (``clear_windows`` 0: every drift window is an alarm, as the agent raised them before).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

LINES = ("line-1", "line-2", "line-3")
#: The defect-mix factors of each line and shift, on top of the site's priors (1.0 where not listed).
LINE_FACTORS: Mapping[str, Mapping[str, float]] = {
    "line-1": {"scratch": 1.5},
    "line-2": {"dent": 1.5, "misalignment": 1.3},
    "line-3": {"missing_part": 1.5, "contamination": 1.3},
}
SHIFT_FACTORS: Mapping[str, Mapping[str, float]] = {
    "day": {},
    "swing": {"dent": 1.8, "misalignment": 1.6, "scratch": 0.8},
    "night": {"contamination": 1.8, "missing_part": 1.8, "no_defect": 0.7},
}


@dataclass(frozen=True)
class Pool:
    """One site's reports, each placed on a line (the drift features are computed apart, row for row)."""

    site: str
    texts: list[str]
    labels: list[str]  # true labels
    lines: list[str]
    priors: Mapping[str, float]

    def buckets(self) -> dict[tuple[str, str], np.ndarray]:
        keys = np.array([f"{line}|{label}" for line, label in zip(self.lines, self.labels, strict=True)])
        return {
            (line, label): np.flatnonzero(keys == f"{line}|{label}")
            for line in LINES
            for label in self.priors
        }


@dataclass
class Stream:
    """Which pool and report each item comes from, its groups, and where the shift starts."""

    source: list[int] = field(default_factory=list)  # index into the pools
    index: list[int] = field(default_factory=list)  # index into that pool
    groups: list[dict[str, str]] = field(default_factory=list)
    shift_at: int | None = None  # the first item from the shifted pool

    def strata(self, keys: Sequence[str]) -> list[str]:
        return ["/".join(g.get(k, "") for k in keys) for g in self.groups]


def site_pool(site: str, count: int, seed: int = 7) -> Pool:
    """``count`` reports of ``site``, each on the line of the part it names (or of its text's hash)."""
    from export.datasets import shopfloor, vocabulary

    reports = shopfloor.site_split(site, seed=seed, n_pool=count, n_eval=0).train
    parts = vocabulary.SITE_PARTS[site]
    line_of = {part.lower(): LINES[i % len(LINES)] for i, part in enumerate(parts)}
    longest_first = sorted(line_of, key=len, reverse=True)  # "side panel" before "panel"

    def line(text: str) -> str:
        lowered = text.lower()
        named = next((part for part in longest_first if part in lowered), None)
        return line_of[named] if named else LINES[zlib.crc32(text.encode("utf-8")) % len(LINES)]

    return Pool(
        site=site,
        texts=[r.text for r in reports],
        labels=[r.true_label for r in reports],
        lines=[line(r.text) for r in reports],
        priors=dict(vocabulary.SITE_PRIORS[site]),
    )


def block_stream(
    pools: Sequence[Pool],
    length: int,
    rng: np.random.Generator,
    *,
    block_items: int,
    shift_blocks: int,
    line_contrast: float,
    shift_contrast: float,
    shift_after: int | None = None,
) -> Stream:
    """``length`` items of ``pools[0]`` in line/shift blocks; from the first block boundary at or
    after ``shift_after`` on (when given), ``pools[1]``'s."""
    shifts = tuple(SHIFT_FACTORS)
    draws = [_Draws(pool, rng, line_contrast, shift_contrast) for pool in pools]
    stream = Stream()
    position = int(rng.integers(len(shifts) * shift_blocks))
    while len(stream.index) < length:
        if shift_after is not None and stream.shift_at is None and len(stream.index) >= shift_after:
            stream.shift_at = len(stream.index)
        source = 0 if stream.shift_at is None else 1
        shift = shifts[position // shift_blocks % len(shifts)]
        line = LINES[position % shift_blocks % len(LINES)]
        for index in draws[source].block(line, shift, min(block_items, length - len(stream.index))):
            stream.source.append(source)
            stream.index.append(index)
            stream.groups.append({"line": line, "shift": shift})
        position += 1
    return stream


class _Draws:
    """Reports of one pool drawn by (line, label) without replacement, reshuffled when used up."""

    def __init__(
        self, pool: Pool, rng: np.random.Generator, line_contrast: float, shift_contrast: float
    ) -> None:
        self.rng = rng
        self.labels = list(pool.priors)
        self.mix = {
            (line, shift): _normalised([
                pool.priors[label]
                * LINE_FACTORS[line].get(label, 1.0) ** line_contrast
                * SHIFT_FACTORS[shift].get(label, 1.0) ** shift_contrast
                for label in self.labels
            ])
            for line in LINES
            for shift in SHIFT_FACTORS
        }  # fmt: skip
        self.buckets = pool.buckets()
        self.queues: dict[tuple[str, str], list[int]] = {}

    def block(self, line: str, shift: str, count: int) -> list[int]:
        labels = self.rng.choice(len(self.labels), size=count, p=self.mix[(line, shift)])
        return [self._next(line, self.labels[label]) for label in labels]

    def _next(self, line: str, label: str) -> int:
        key = (line, label)
        if not self.queues.get(key):
            bucket = self.buckets[key]
            if not len(bucket):  # no report of this class on this line: any line's
                bucket = np.concatenate([b for (_, other), b in self.buckets.items() if other == label])
            self.queues[key] = [int(i) for i in self.rng.permutation(bucket)]
        return self.queues[key].pop()


def _normalised(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


@dataclass(frozen=True)
class Setting:
    """The monitor settings a replay needs (read off a DriftConfig, see ``bench/drift.py``)."""

    window_items: int
    reference_windows: int
    strata: tuple[str, ...]
    clear_windows: int  # 0: every drift window is an alarm
    alpha: float
    warning_alpha: float


@dataclass(frozen=True)
class Replay:
    """Each checked window's end (items into the stream), status and whether it raised an alarm."""

    ends: list[int]
    statuses: list[str]
    alarms: list[bool]


def replay(
    stream: Stream, features: Sequence[np.ndarray], names: Sequence[str], setting: Setting, windows: int
) -> Replay:
    """The monitor over ``stream``: its reference, then ``windows`` contiguous windows checked."""
    from edge_agent import drift

    size = setting.window_items
    matrix = np.stack([features[s][i] for s, i in zip(stream.source, stream.index, strict=True)])
    keys = stream.strata(setting.strata) if setting.strata else None
    start = setting.reference_windows * size
    reference, reference_keys = matrix[:start], keys[:start] if keys else None
    result = Replay([], [], [])
    for first in range(start, min(len(matrix), start + windows * size) - size + 1, size):
        # strata only when asked for: compare_windows before strata takes no such arguments
        strata = (
            {"reference_strata": reference_keys, "window_strata": keys[first : first + size]} if keys else {}
        )
        check = drift.compare_windows(
            reference, matrix[first : first + size], names,
            alpha=setting.alpha, warning_alpha=setting.warning_alpha, **strata,
        )  # fmt: skip
        recent = result.statuses[-setting.clear_windows :] if setting.clear_windows else []
        result.ends.append(first + size)
        result.alarms.append(check.status == "drift" and "drift" not in recent)
        result.statuses.append(check.status)
    return result


def first_after(result: Replay, shift_at: int, *, alarm: bool) -> int | None:
    """Items from the shift to the end of the first window after it that raised an alarm (or,
    ``alarm`` false, whose status was drift, whether or not an open episode held its alarm back)."""
    flags = result.alarms if alarm else [status == "drift" for status in result.statuses]
    return next(
        (end - shift_at for end, flag in zip(result.ends, flags, strict=True) if flag and end > shift_at),
        None,
    )


def episode_open_at(result: Replay, shift_at: int, clear_windows: int) -> bool:
    """Whether a drift episode was still open when the shift came (a false alarm just before it)."""
    before = [status for end, status in zip(result.ends, result.statuses, strict=True) if end <= shift_at]
    return clear_windows > 0 and "drift" in before[-clear_windows:]
