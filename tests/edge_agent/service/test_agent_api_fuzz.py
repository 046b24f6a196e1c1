"""Fuzz the running agent from its own OpenAPI document: whatever arrives, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from edge_agent.site_init import init_site


@pytest.fixture(scope="module")
def fuzzed_agent(
    tmp_path_factory: pytest.TempPathFactory,
    keypair: tuple[Path, Path],
    bundle_versions: dict[int, Path],
    agent_harness: Any,
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("fuzz")
    site = init_site(root / "site", site_name="fuzz", trust=[keypair[1]])
    agent_harness.write_settings(
        site, {"runtime": {"provider": "cpu", "intra_op_threads": 1}, "gates": {"auto_advance": False}}
    )
    process = agent_harness.AgentProcess(site, root / "agent.log").start()
    with process.client() as client:
        client.install(bundle_versions[1])
        client.install(bundle_versions[2])  # a candidate, so promote and rollback have something to act on
        client.predict("scratch on the housing")
    yield process
    process.stop()


def test_no_request_makes_the_agent_fail(fuzzed_agent: Any) -> None:
    """Every operation in /openapi.json, with generated (valid and invalid) requests, as the supervisor."""
    schema = schemathesis.openapi.from_url(fuzzed_agent.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed_agent.site.read_token('supervisor')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(
                headers=headers,
                checks=[schemathesis.checks.not_a_server_error, response_schema_conformance],
            )

        check()
