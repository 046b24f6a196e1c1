"""Which site folder a ClientApp message is for: light enough for every mod to import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Set only in a ``genba simulate`` process: the folder of the simulated sites (``sim-NNN``).
SIMULATED_SITES_ENV = "GENBA_SIMULATED_SITES"


def site_data(context: Any) -> Path:
    """The site folder from the SuperNode's node config (``data=...``, set by ``genba agent join``)."""
    data = context.node_config.get("data")
    simulated = os.environ.get(SIMULATED_SITES_ENV)
    if not data and simulated and "partition-id" in context.node_config:  # genba simulate
        return Path(simulated) / f"sim-{int(context.node_config['partition-id']):03d}"
    if not data:
        raise ValueError(
            "this SuperNode was started without node config data=SITE_FOLDER; use 'genba agent join'"
        )
    return Path(str(data))
