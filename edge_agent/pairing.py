"""Which held-out inputs a candidate is judged on, and which of them are drawn for a label.

Every input both the candidate and production answered in shadow or pilot whose content is held
out (``edge_agent.split``: by content, so the candidate never trained on it) joins the paired
sample; those the two answered differently are drawn for labelling with the chance
``gates.disagreement_share``, from the OS's randomness (no caller can predict or steer a draw).
See ``edge_agent.store.paired_sample`` and ``edge_agent.evidence.sampled_evidence``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from edge_agent.answers import Item, ModelAnswer
from edge_agent.split import HOLDOUT, SplitRule
from edge_agent.store import PairedAnswer

_DRAW = random.SystemRandom()


def pair_answers(
    rule: SplitRule,
    share: float,
    input_ids: Sequence[int],
    items: Sequence[Item],
    candidate: Sequence[ModelAnswer],
    production: Sequence[ModelAnswer],
    draw: Callable[[], float] = _DRAW.random,
) -> list[PairedAnswer]:
    """The paired-sample rows of one batch: held-out inputs both models answered, disagreements drawn."""
    pairs = []
    for input_id, item, ours, theirs in zip(input_ids, items, candidate, production, strict=True):
        if ours.label is None or theirs.label is None or rule.split_for(item.kind, item.raw) != HOLDOUT:
            continue
        drawn = ours.label != theirs.label and draw() < share
        pairs.append(PairedAnswer(input_id, ours.label, theirs.label, drawn))
    return pairs
