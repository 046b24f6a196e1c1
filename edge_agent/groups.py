"""Per-group figures: accuracy on operator labels for each line, shift, product or site.

An input's groups are the tags it arrived with, updated by any tags given with its latest label.
A group with fewer labels than ``GroupsConfig.min_labels`` gets no accuracy: it is listed as too
small, never left out, so a supervisor sees which groups nobody can judge yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from edge_agent.config import GroupsConfig
from genba.errors import UsageError

if TYPE_CHECKING:
    from edge_agent.store import SiteStore


@dataclass(frozen=True)
class GroupFigure:
    key: str
    value: str
    labels: int
    accuracy: float | None  # None when the group is too small to judge
    too_small: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unknown_tags(groups: Mapping[str, str], config: GroupsConfig) -> list[str]:
    """One message per tag this site does not know; the input is still answered and kept."""
    return [
        f"unknown group tag {key!r} (known: {', '.join(config.keys)}); it is stored but no group figure "
        "uses it until it is added to [groups] keys in agent.toml"
        for key in sorted(groups)
        if key not in config.keys
    ]


def require_known_tag(key: str | None, config: GroupsConfig) -> None:
    if key is not None and key not in config.keys:
        raise UsageError(f"unknown group tag {key!r}; ask for one of {', '.join(config.keys)}")


def members(tags: Mapping[int, Mapping[str, str]], keys: Iterable[str]) -> dict[tuple[str, str], list[int]]:
    """Input ids by (tag, value), for the known tags only, in a stable order."""
    wanted = set(keys)
    grouped: dict[tuple[str, str], list[int]] = {}
    for input_id, groups in tags.items():
        for key, value in groups.items():
            if key in wanted:
                grouped.setdefault((key, value), []).append(input_id)
    return dict(sorted(grouped.items()))


def accuracy_by_group(
    labels: Mapping[int, str],
    answers: Mapping[int, str | None],
    tags: Mapping[int, Mapping[str, str]],
    config: GroupsConfig,
) -> list[GroupFigure]:
    """Accuracy of ``answers`` against the operators' ``labels`` (both by input id), group by group."""
    figures = []
    for (key, value), ids in members(tags, config.keys).items():
        judged = [i for i in ids if i in labels and i in answers]
        too_small = len(judged) < config.min_labels
        correct = sum(answers[i] == labels[i] for i in judged)
        accuracy = None if too_small or not judged else round(correct / len(judged), 4)
        figures.append(GroupFigure(key, value, len(judged), accuracy, too_small))
    return figures


def production_by_group(store: SiteStore, config: GroupsConfig, key: str | None = None) -> dict[str, Any]:
    """Production's served answers against the operators' labels, group by group (the local API's view)."""
    require_known_tag(key, config)
    rows = store.labels_with_served_answers()
    labels = {input_id: label for input_id, label, _ in rows}
    answers = {input_id: answer for input_id, _, answer in rows if answer is not None}
    tags = store.group_tags(list(labels))
    keys = (key,) if key else config.keys
    figures = accuracy_by_group(labels, answers, tags, replace(config, keys=keys))
    return {
        "keys": list(keys),
        "min_labels": config.min_labels,
        "labels": len(labels),
        "untagged_labels": sum(1 for i in labels if not set(tags.get(i, {})) & set(keys)),
        "unknown_tags": sorted({k for t in tags.values() for k in t if k not in config.keys}),
        "groups": [figure.to_json() for figure in figures],
    }
