"""An agent whose batcher tokenizes the next batch during inference answers exactly as one that does not."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.site import SiteFolder
from genba import bundle
from genba.runtime import BundleModel, RuntimeConfig

TEXTS = [
    "scratch on the housing surface",
    "no dent found, part ok",
    "oil on the bracket near the rim",
    "left rim dent, deep",
    "surface scratch, line 2, part 4411",
    "good part",
]


def test_overlapped_batches_answer_every_caller_with_its_own_answer(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    bundle_versions: dict[int, Path],
    agent_harness: Any,
) -> None:
    settings = {
        **agent_harness.TEST_SETTINGS,
        "batching": {"max_batch_size": 8, "max_wait_ms": 5.0, "overlap": "on"},
    }
    site = make_site(settings=settings)
    bare = BundleModel(bundle.verify_directory(bundle_versions[1], None), RuntimeConfig(provider="cpu"))
    expected = {text: prediction.label for text, prediction in zip(TEXTS, bare.predict(TEXTS), strict=True)}
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        requests = [TEXTS[i % len(TEXTS)] for i in range(48)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(client.predict, requests))
        status = client.status()
    assert [answer.label for answer in answers] == [expected[text] for text in requests]
    assert all(answer.latency_ms > 0 for answer in answers)
    assert status.production.variant == "cpu"
