"""Where a site stands in the federation, from its own records: the SuperNode's state file and the ledger.

``genba agent join`` writes ``DATA/federation/supernode.json`` (pid, SuperLink, start time) while
its SuperNode runs. Updates sent, their size and round come from the egress ledger, so what the
API reports is what the ledger proves; the lifetime ε budget and what is spent of it come from
the audit log (:mod:`edge_agent.federation.dp`). Imports no Flower: the agent's API serves this.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from edge_agent.federation.budget import privacy_budget
from edge_agent.federation.traffic_report import control_traffic
from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.files import write_json_atomically

UPDATE_KIND = "masked_update"


def state_file(site: SiteFolder) -> Path:
    return site.root / "federation" / "supernode.json"


def write_joined(site: SiteFolder, pid: int, superlink: str) -> None:
    path = state_file(site)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, {"pid": pid, "superlink": superlink, "started_at": time.time()})


def clear_joined(site: SiteFolder, pid: int) -> None:
    path = state_file(site)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def federation_state(site: SiteFolder, store: SiteStore) -> dict[str, Any]:
    joined = _joined(site)
    updates, last = store.egress_count(UPDATE_KIND)
    return {
        "joined": joined is not None,
        "superlink": (joined or {}).get("superlink"),
        "joined_since": (joined or {}).get("started_at"),
        "updates_sent": updates,
        "last_update": None
        if last is None
        else {
            "at": last.created_at,
            "round": last.fields["round"],
            "payload_bytes": last.fields["payload_bytes"],
            "masked": True,
        },
        "bytes_sent_by_kind": store.egress_totals(),
        "differential_privacy": None
        if last is None
        else (last.fields.get("details") or {}).get("differential_privacy"),
        "privacy_budget": privacy_budget(site, store),
        # Per round: bytes the SuperNode sent, the ledgered payload, and the rest (control traffic).
        "control_traffic": control_traffic(site.root, store.egress_payload),
    }


def _joined(site: SiteFolder) -> dict[str, Any] | None:
    try:
        state = json.loads(state_file(site).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(state)
