"""Drift, per-group figures and explanations through a real `genba agent serve` and the typed client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.site import SiteFolder
from genba.errors import GenbaError

WORDS = ("scratch", "dent", "housing", "surface", "rim", "flange", "on", "the", "near", "left")


def test_drift_groups_and_explanations_are_served_to_the_roles_that_may_see_them(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    bundle_versions: dict[int, Path],
    agent_harness: Any,
    waiter: Callable[..., Any],
) -> None:
    site = make_site()
    agent_harness.write_settings(site, {"drift": {"window_items": 20}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(4 + i % 3)) for i in range(25)]
        answers = client.predict_batch(texts, groups={"line": "L1"})
        status = waiter(lambda: client.drift() if client.drift().status else None, what="the first window")
        assert status.reference.items == 20 and status.items_in_current_window == 5
        assert status.checks[0].reference == "manifest" and status.checks[0].status != "drift"
        assert client.status().drift.status == status.status
        for answer in answers[:12]:
            client.label(answer.input_id, answer.label)  # group figures count every label, any split
        groups = client.groups("line")
        assert [figure.model_dump() for figure in groups.groups] == [
            {"key": "line", "value": "L1", "labels": 12, "accuracy": 1.0, "too_small": False}
        ]
        with pytest.raises(GenbaError, match="unknown group tag 'colour'"):
            client.groups("colour")
        explanation = client.explain(answers[0].input_id)
        assert [w.text for w in explanation.words or []] == texts[0].split()
    # an integration predicts; it does not read figures
    with agent.client("integration") as integration, pytest.raises(GenbaError, match="may not"):
        integration.groups()
