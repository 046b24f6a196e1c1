"""`POST /v1/train`: a child process trains, the agent installs its result in shadow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import StoreConfig
from edge_agent.site import SiteFolder
from edge_agent.split import SplitRule
from genba.errors import PermissionDeniedError

REPORTS = {
    "scratch": ["scratch on the housing", "long scratch near the rim", "surface scratch on part 4711"],
    "dent": ["dent near the flange", "left rim dent", "small dent on the cover"],
    "ok": ["part ok no issues found", "good part", "no defect, passed"],
}
#: How site-a's agent splits these reports (by content); the training job may read only the train ones.
RULE = SplitRule("site-a", StoreConfig().holdout_fraction)
TRAINED = [t for texts in REPORTS.values() for t in texts if RULE.split_for("text", t.encode()) == "train"]


def test_training_through_the_api_puts_a_site_signed_candidate_in_shadow(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    bundle_versions: dict[int, Path],
    waiter: Callable[..., Any],
) -> None:
    site = make_site(settings={"runtime": {"provider": "cpu"}, "gates": {"auto_advance": False}})
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        for label, texts in REPORTS.items():
            for text in texts:
                given = client.label(client.predict(text).input_id, label, operator_seconds=2.0)
                assert given.split == RULE.split_for("text", text.encode())  # the agent's call, by content
        with agent.client("operator") as operator, pytest.raises(PermissionDeniedError):
            operator.train()
        job = client.train("head", seed=3)
        assert job.state == "running" and job.mode == "head"
        done = waiter(lambda: getattr(client.training(), "state", None) != "running" and client.training(),
                      timeout=180, what="the training job")  # fmt: skip
        assert done.state == "succeeded", done.message
        status = client.status()
        # last-k needs the torch model behind this bundle; the default source (MiniLM) is not it.
        client.train("last-k")
        failed = waiter(lambda: getattr(client.training(), "state", None) != "running" and client.training(),
                        timeout=180, what="the last-k job")  # fmt: skip
        assert failed.state == "failed" and failed.mode == "last-k"
        assert "does not compute the production backbone" in failed.message
        assert "\n" not in failed.message and client.status().candidate.version_label == "1.1"
        # contrastive is asked for the same way, and refused by the same check on its source model.
        client.train("contrastive")
        refused = waiter(lambda: getattr(client.training(), "state", None) != "running" and client.training(),
                         timeout=180, what="the contrastive job")  # fmt: skip
        assert refused.state == "failed" and refused.mode == "contrastive"
        assert "does not compute the production backbone" in refused.message and "\n" not in refused.message
        assert client.status().candidate.version_label == "1.1"
        # --unlabelled travels with the job: adapt with head mode is refused by the training process.
        client.train("head", unlabelled="adapt")
        refused = waiter(lambda: getattr(client.training(), "state", None) != "running" and client.training(),
                         timeout=180, what="the head job with --unlabelled adapt")  # fmt: skip
        assert refused.state == "failed" and refused.unlabelled == "adapt"
        assert "adapts the encoder, which head mode keeps" in refused.message
    # Four training jobs ran, and torch never loaded into the agent that serves: each ran in a child.
    assert "libtorch" not in Path(f"/proc/{agent.process.pid}/maps").read_text()
    candidate = status.candidate
    assert (candidate.version, candidate.revision, candidate.stage) == (1, 1, "shadow")
    assert candidate.signer_key_id != status.production.signer_key_id  # the site's key, not IT's
    assert candidate.lineage["source"]["kind"] == "site-training"
    assert candidate.lineage["parent"]["version"] == 1
    # the held-out report never trains
    assert done.result["training"]["report"]["labels"] == len(TRAINED) == 8
