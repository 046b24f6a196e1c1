"""``genba simulate``: Flower's simulation engine with the kit's own apps and real simulated site folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.site import SiteFolder
from edge_agent.store import SiteStore
from genba.demo.simulation import SimulationConfig, simulate
from genba.errors import OutputPathError, UsageError

pytestmark = pytest.mark.timeout(900)


def test_simulated_sites_train_under_secagg_on_their_own_stores(
    tmp_path: Path, bert_bundle: Path, keypair: tuple[Path, Path]
) -> None:
    config = SimulationConfig(
        bundle=bert_bundle, trust=keypair[1], out=tmp_path / "sim", sites=4, rounds=2, labels_per_class=3
    )
    result = simulate(config)
    assert result["rounds_aggregated"] == [1, 2]
    assert all(fit["sites"] == 4 and fit["dropped"] == [] for fit in result["fit_by_round"].values())
    for by_site in result["per_site_by_round"].values():
        assert len(by_site) == 4
        for figures in by_site.values():
            assert 0.0 <= figures["accuracy"] <= 1.0 and figures["examples"] == 4  # 2 classes x 2 held out
    for name in result["sites"]:
        with SiteStore.read_only(SiteFolder(tmp_path / "sim" / "sites" / name).store_file) as store:
            kinds = [entry.fields["kind"] for entry in store.egress(limit=1000)]
        assert kinds.count("masked_update") == 2 and kinds.count("evaluation") == 2
    assert (Path(result["results"]) / "head.npz").is_file()
    with pytest.raises(OutputPathError):
        simulate(config)


def test_a_simulation_below_the_privacy_floor_is_refused(tmp_path: Path, bert_bundle: Path) -> None:
    with pytest.raises(UsageError, match="privacy floor"):
        SimulationConfig(bundle=bert_bundle, trust=bert_bundle, out=tmp_path, sites=2)
