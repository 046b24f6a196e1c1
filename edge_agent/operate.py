"""Run one operation on a site: through its running agent's API if one answers, else on the folder.

The CLI's management commands and the federation's bundle delivery both go through here, so
an operation behaves the same whether or not the agent is serving: the API path keeps the
serving model serving; the offline path takes the site's exclusive lock first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def on_site(
    data: Path, online: Callable[[Any], Any], offline: Callable[[Any], Any], manage: bool = True
) -> Any:
    """``online(AgentClient)`` if the site's agent answers, else ``offline(Agent)`` (not serving)."""
    from edge_agent.service.client import AgentClient
    from edge_agent.site import SiteFolder
    from genba.errors import AgentUnavailableError

    site = SiteFolder(data).require_initialized()
    try:
        client = AgentClient.for_site(site.root, "supervisor" if manage else None)
        client.health()
    except AgentUnavailableError:
        return _offline(site, offline, manage)
    with client:
        return online(client)


def _offline(site: Any, action: Callable[[Any], Any], manage: bool) -> Any:
    from edge_agent.agent import Agent
    from edge_agent.site import exclusive_agent

    site.read_token("supervisor" if manage else "operator")  # the same right the API would ask for
    with exclusive_agent(site), Agent.open(site, serving=False) as agent:
        return action(agent)
