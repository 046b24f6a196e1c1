"""A test-only build of the site's ClientApp with the privacy floor taken out. Never in the package.

The installed ClientApp (``edge_agent.federation.client_app.app``) with the same client function
and the same mods in the same order, less :func:`privacy_floor_mod`: what a site would run if
the floor were not enforced at the site. tests/server/test_secagg_floor.py ships it in a test
FAB to show that the attack its floored twin defeats does succeed without the floor, so the
test can fail.
"""

from __future__ import annotations

from flwr.client import ClientApp

from edge_agent.federation import client_app as installed
from edge_agent.federation.floor import privacy_floor_mod

MODS = [mod for mod in installed.app._mods if mod is not privacy_floor_mod]

app = ClientApp(client_fn=installed.client_fn, mods=MODS)
