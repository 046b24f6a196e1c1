"""Site training: fit a new head on the site's own training labels and write a signed candidate bundle.

Torch is imported here only, lazily, inside the functions that fit; the agent's serving
modules never import this package, so training runs in its own process
(``python -m edge_agent.training``) while the agent keeps serving.
"""

from __future__ import annotations

from edge_agent.training.run import MODES, train_candidate

__all__ = ["MODES", "train_candidate"]
