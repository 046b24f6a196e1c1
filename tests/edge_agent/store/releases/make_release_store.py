"""Make the store a released Genba leaves behind, for the upgrade test (test_store_releases.py).

Run with the release's own code (a checkout of its commit first on PYTHONPATH), from a checkout
of the release, with a signed bundle and its public key::

    PYTHONPATH=RELEASE_CHECKOUT python make_release_store.py BUNDLE KEY.pub OUT.db OUT.json

A real site served by a real agent: the bundle installed, 60 reports answered on two lines, 24 of
them labelled by an operator (some corrected), an IT export recorded in the egress ledger. OUT.json
holds what the test checks after the upgrade: counts, the release's schema and every id written.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path


def main() -> int:
    bundle, key, out_db, out_json = (Path(arg) for arg in sys.argv[1:5])
    from edge_agent.agent import Agent
    from edge_agent.answers import Item
    from edge_agent.site_init import init_site

    with tempfile.TemporaryDirectory() as folder:
        site = init_site(Path(folder) / "site", site_name="release-site", trust=[key])
        texts = [f"{('dent near the flange', 'scratch on the housing', 'good part')[i % 3]} of lot {i:03d}"
                 for i in range(60)]  # fmt: skip
        with Agent.open(site, serving=False) as agent:
            agent.install(bundle, actor="supervisor")
        with Agent.open(site) as agent:
            answers = agent.predict(
                [
                    Item(kind="text", value=t, raw=t.encode(), groups={"line": f"L{i % 2 + 1}"})
                    for i, t in enumerate(texts)
                ]
            )
            labels, known = [], sorted(agent.known_labels())
            for i, answer in enumerate(answers[:24]):  # every fourth one corrected
                served = answer.production.label
                label = served if i % 4 else known[(known.index(served) + 1) % len(known)]
                labels.append(agent.label(answer.input_id, label, actor="operator", operator_seconds=4.0).id)
            agent.store.append_egress(destination="superlink:9092", kind="fit_result", payload_bytes=4096,
                                      content_sha256="ab" * 32, round=1, details={"run": "7"})  # fmt: skip
            inputs = [answer.input_id for answer in answers]
            predictions = [answer.prediction_id for answer in answers]
        with sqlite3.connect(site.store_file) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            tables = ("inputs", "predictions", "labels", "models", "audit_log", "egress_ledger")
            counts = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}
            schema = db.execute("PRAGMA user_version").fetchone()[0]
        shutil.copyfile(site.store_file, out_db)
    from importlib import metadata

    out_json.write_text(json.dumps({
        "genba": metadata.version("genba"), "schema": schema, "counts": counts,
        "inputs": inputs, "predictions": predictions, "labels": labels,
    }, indent=1), encoding="utf-8")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
