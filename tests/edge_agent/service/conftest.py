"""What the service tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.site import SiteFolder


@pytest.fixture
def agent_serving_v1(
    make_site: Callable[..., SiteFolder], bundle_versions: dict[int, Path]
) -> Iterator[Agent]:
    """A real agent on the CPU serving bundle v1, gates left alone; the test builds the app over it."""
    settings = {"runtime": {"provider": "cpu", "intra_op_threads": 1}, "gates": {"auto_advance": False}}
    with Agent.open(make_site(settings=settings)) as agent:
        agent.install(bundle_versions[1], actor="supervisor")
        yield agent
