"""The tiny sentence-transformers model, its IT bundle and a labelled site, for site-training tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder


def _load_sentence_site() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "genba_tests_sentence_site", Path(__file__).with_name("sentence_site.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sentence_site = _load_sentence_site()


@pytest.fixture(name="sentence_site", scope="session")
def sentence_site_helpers() -> ModuleType:
    """tests/edge_agent/training/sentence_site.py: the labels and the checks on a written candidate."""
    return sentence_site


@pytest.fixture(scope="module")
def sentence_dir(tiny_sentence: Path) -> Path:
    return tiny_sentence


@pytest.fixture(scope="module")
def sentence_bundle(
    sentence_dir: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny sentence model with a random 3-label head, exported fp32 and signed by IT."""
    from export import ExportConfig, export_model
    from export.graphs import HeadWeights

    rng = np.random.default_rng(0)
    head = HeadWeights(rng.normal(0, 0.5, (3, 32)).astype(np.float32), np.zeros(3, dtype=np.float32))
    config = ExportConfig(
        model_dir=sentence_dir,
        task="text-classification",
        out=tmp_path_factory.mktemp("st-bundle") / "bundle",
        labels=sentence_site.LABELS,
        precision="fp32",
        signing_key=keypair[0],
        name="tiny-st",
    )
    return export_model(config, head=head).bundle


@pytest.fixture
def st_site(
    make_site: Callable[..., SiteFolder], sentence_bundle: Path, sentence_dir: Path, agent_harness: Any
) -> Callable[..., SiteFolder]:
    def build(**training: Any) -> SiteFolder:
        site = make_site("site-a")
        agent_harness.write_settings(
            site, {"training": {"source_model": str(sentence_dir), **sentence_site.FAST, **training}}
        )
        with Agent.open(site) as agent:
            agent.install(sentence_bundle, actor="supervisor")
            sentence_site.label_texts(agent, [*sentence_site.TRAIN, *sentence_site.HOLDOUT])
        return site

    return build
