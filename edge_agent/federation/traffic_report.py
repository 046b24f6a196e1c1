"""The site's control traffic per round, as the agent's status reports it (imports no Flower).

The SuperNode's process counts every byte its Fleet client sends and receives
(:mod:`edge_agent.federation.traffic`) into ``DATA/federation/traffic.json``. For each round,
control traffic is the bytes sent less the payload the egress ledger recorded for that round:
registration, heartbeats, polling, HTTP and TLS framing, the protocol's own envelopes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Rounds the agent's status reports.
REPORTED_ROUNDS = 10


def traffic_file(site: Path) -> Path:
    return site / "federation" / "traffic.json"


def control_traffic(
    site: Path, payload_of: Callable[[int, int | None], int], last: int = REPORTED_ROUNDS
) -> dict[str, Any] | None:
    """The site's control traffic for its newest rounds, as the agent's status reports it.

    ``payload_of(run, round)`` is the payload the egress ledger recorded for that round; each
    round's control bytes are the bytes sent less that payload. None if the SuperNode never ran.
    """
    try:
        document = json.loads(traffic_file(site).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rounds = []
    for entry in document.get("rounds", [])[-last:]:
        group = entry.get("round")
        payload = 0 if entry.get("run") is None else payload_of(int(entry["run"]), _round_number(group))
        rounds.append({
            "run": entry.get("run"), "round": group, "sent": entry["sent"], "received": entry["received"],
            "payload": payload, "control": entry["sent"] - payload, "requests": entry.get("requests", {}),
            "request_seconds": entry.get("seconds", {}),
        })  # fmt: skip
    return {"updated_at": document.get("updated_at"), "rounds": rounds}


def _round_number(group: Any) -> int | None:
    return int(group) if isinstance(group, str) and group.isdigit() else None
