"""What a site does with a round's global head: fit from it, score it, or refuse it with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.answers import Item
from edge_agent.federation.site_trainer import SiteTrainer
from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site
from edge_agent.store import SiteStore
from export.head_swap import backbone_sha256, read_head
from genba.bundle import verify_directory
from genba.errors import UsageError

ROWS = [
    ("scratch on the housing", "scratch", "train"), ("scratch near the rim", "scratch", "train"),
    ("dent in the bracket", "dent", "train"), ("dent on the flange", "dent", "train"),
    ("good part ok", "ok", "train"), ("part looks ok", "ok", "train"),
    ("scratch on the clip", "scratch", "holdout"), ("dent near the screw", "dent", "holdout"),
]  # fmt: skip


@pytest.fixture
def site(tmp_path: Path, bert_bundle: Path, keypair: tuple[Path, Path], agent_harness: Any) -> SiteFolder:
    folder = init_site(tmp_path / "site", site_name="site-a", trust=[keypair[1]])
    agent_harness.write_settings(folder, agent_harness.TEST_SETTINGS)
    with Agent.open(folder) as agent:
        agent.install(bert_bundle, actor="supervisor")
        answers = agent.predict([Item(kind="text", value=t, raw=t.encode()) for t, _, _ in ROWS])
        for answer, (_, label, split) in zip(answers, ROWS, strict=True):
            agent.store.add_label(answer.input_id, label, actor="operator", split=split)
    return folder


def test_a_round_fits_from_the_global_head_and_scores_it_on_held_out_labels(
    site: SiteFolder, bert_bundle: Path
) -> None:
    head = read_head(verify_directory(bert_bundle, None))
    trainer = SiteTrainer.open(
        site.root, backbone=backbone_sha256(verify_directory(bert_bundle, None).manifest)
    )
    fitted = trainer.fit([head.weight, head.bias])
    assert fitted.weight.shape == head.weight.shape and not np.allclose(fitted.weight, head.weight)
    assert trainer.train_examples == 6
    loss, accuracy, count = trainer.evaluate([fitted.weight, fitted.bias])
    assert count == 2 and 0.0 <= accuracy <= 1.0 and loss > 0


def test_a_global_head_of_another_shape_or_for_another_backbone_is_refused(
    site: SiteFolder, bert_bundle: Path
) -> None:
    head = read_head(verify_directory(bert_bundle, None))
    trainer = SiteTrainer.open(site.root)
    wrong = [np.zeros((head.weight.shape[0] + 1, head.weight.shape[1]), np.float32), np.zeros(4, np.float32)]
    with pytest.raises(UsageError, match="the sites run different models") as caught:
        trainer.fit(wrong)
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="a head's 2"):
        trainer.evaluate([head.weight])
    with SiteStore.read_only(site.store_file) as store:
        cached = store.embedding_count()
    with pytest.raises(UsageError, match="whose backbone is not the one this run trains heads for"):
        SiteTrainer.open(site.root, backbone="0" * 64)
    with SiteStore.read_only(site.store_file) as store:  # refused before anything was embedded
        assert store.embedding_count() == cached
