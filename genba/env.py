"""Process environment for every Genba entry point: telemetry off, offline on.

Import this module before anything that may import onnxruntime, flwr, ray or a
Hugging Face library. ONNX Runtime reads ``ORT_DISABLE_TELEMETRY`` when it is
imported (calling ``disable_telemetry_events()`` afterwards is too late), so the
switches must be in ``os.environ`` first. Child processes inherit them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

#: Every switch Genba forces. Values are strings because they go into os.environ.
PRIVACY_ENVIRONMENT: Mapping[str, str] = {
    # ONNX Runtime: on by default on Linux (writes a device id and an event queue).
    "ORT_DISABLE_TELEMETRY": "1",
    # Flower: posts events to its telemetry service unless switched off.
    "FLWR_TELEMETRY_ENABLED": "0",
    # Hugging Face: never reach a hub, never report usage.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    # Ray (Flower's simulation engine): no usage stats, no dashboard, loopback only.
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DASHBOARD": "1",
    "RAY_NODE_IP_ADDRESS": "127.0.0.1",
    # Quiet tokenizers fork warnings in worker processes.
    "TOKENIZERS_PARALLELISM": "false",
}


def apply(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Force the privacy switches into ``environ`` (``os.environ`` by default).

    Forced, not defaulted: a user's ``FLWR_TELEMETRY_ENABLED=1`` must not turn
    reporting back on inside a Genba process.
    """
    target = os.environ if environ is None else environ
    target.update(PRIVACY_ENVIRONMENT)
    return target


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the current environment with the switches forced, for subprocesses."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    apply(env)
    return env


apply()
