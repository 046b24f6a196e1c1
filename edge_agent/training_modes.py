"""The names of site training's modes and unlabelled options: plain constants, so the CLI can offer them
in any role (the base install has no numpy) without importing what trains."""

from __future__ import annotations

#: ``genba agent train --mode``: ``auto`` cross-validates the others on the labels and trains the
#: winner; ``last-k`` and ``contrastive`` change the encoder and re-export it.
TRAINING_MODES = ("head", "last-k", "contrastive", "auto")
ENCODER_MODES = ("last-k", "contrastive")
#: ``--unlabelled``: what the site's unlabelled reports are used for (``edge_agent.training.adapt``).
UNLABELLED = ("off", "adapt", "pseudo")
