"""A real agent whose site folder sits on a disk that fills up (a small tmpfs mounted for the test):
an install or a store write is refused with 507 and one line, production keeps serving, nothing is
half-written, and everything works again once space is back."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_agent.site import SiteFolder
from edge_agent.site_init import init_site
from edge_agent.store import SiteStore
from genba import env
from genba.errors import DiskFullError

pytestmark = pytest.mark.fault

#: Close to the API's 20,000-character limit, so a few predictions fill what space is left.
_LONG_REPORT = "dent on the left flange near part 4711, surface scratched " * 330


def _site_on(small_disk: Any, keypair: tuple[Path, Path], agent_harness: Any) -> SiteFolder:
    site = init_site(small_disk.root / "site-a", site_name="site-a", trust=[keypair[1]])
    agent_harness.write_settings(site, agent_harness.TEST_SETTINGS)
    return site


def _check_store_whole(site: SiteFolder, acknowledged: list[int]) -> None:
    with SiteStore(site.store_file) as store:
        assert store.integrity_check() == "ok"
        reports = store.verify_chains(full=True)
        assert reports["audit"].ok and reports["egress"].ok, reports
        assert [row.id for row in store.get_inputs(acknowledged)] == acknowledged


def _one_line(error: BaseException, *needles: str) -> None:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def test_an_install_onto_a_full_disk_is_refused_whole_and_production_keeps_serving(
    small_disk: Any,
    keypair: tuple[Path, Path],
    agent_harness: Any,
    agent_process: Callable[[SiteFolder], Any],
    bundle_versions: dict[int, Path],
    make_version: Callable[..., Path],
) -> None:
    site = _site_on(small_disk, keypair, agent_harness)
    big = make_version(bundle_versions[1], 2, edit=_pad)  # 2 MB more than the tiny model: it cannot fit
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        installed = sorted(path.name for path in site.models_dir.iterdir())
        small_disk.fill(leave=512 * 1024)  # room for the store's writes, not for the bundle
        with pytest.raises(DiskFullError) as refused:
            client.install(big)
        assert refused.value.status == 507
        _one_line(refused.value, "no space left to install", "production keeps serving")
        assert sorted(path.name for path in site.models_dir.iterdir()) == installed  # no half copy
        assert client.status().candidate is None
        acknowledged = [client.predict("dent on the rim").input_id for _ in range(3)]
        assert client.predict("scratch on the housing").model.version == 1

        cli = _cli_install(site, big)
        assert cli.returncode == 7, cli.stderr
        _one_line(cli.stderr.strip(), "no space left to install")
        assert sorted(path.name for path in site.models_dir.iterdir()) == installed

        small_disk.free()
        assert client.install(big).slot == "candidate"
        assert client.predict("scratch on the housing").model.version == 1
    agent.stop()
    _check_store_whole(site, acknowledged)


def _pad(bundle: Path) -> None:
    (bundle / "padding.bin").write_bytes(bytes(2 << 20))


def _cli_install(site: SiteFolder, bundle: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "genba", "agent", "install", "--data", str(site.root), str(bundle)]
    return subprocess.run(
        command, capture_output=True, text=True, env=env.child_environment(), timeout=120, check=False
    )


def test_predictions_and_labels_on_a_full_disk_are_refused_with_507_and_work_again_with_space(
    small_disk: Any,
    keypair: tuple[Path, Path],
    agent_harness: Any,
    agent_process: Callable[[SiteFolder], Any],
    bundle_versions: dict[int, Path],
) -> None:
    site = _site_on(small_disk, keypair, agent_harness)
    agent = agent_process(site)
    with agent.client() as client:
        client.install(bundle_versions[1])
        acknowledged = [client.predict("dent on the rim").input_id for _ in range(3)]
        small_disk.fill()
        refused = _predict_until_refused(client, acknowledged)
        assert refused.status == 507
        _one_line(refused, "disk is full", "free some space")
        with pytest.raises(DiskFullError):
            client.label(acknowledged[0], "dent")
        _assert_error_shape(agent, site)
        assert client.status().production is not None  # reads still answer; the process lives
        assert agent.process.poll() is None

        small_disk.free()
        answer = client.predict("scratch on the housing")
        assert answer.model.version == 1
        acknowledged.append(answer.input_id)
        client.label(acknowledged[0], "dent")
    agent.stop()
    _check_store_whole(site, acknowledged)


def _predict_until_refused(client: Any, acknowledged: list[int]) -> DiskFullError:
    for _ in range(500):  # the WAL's existing pages take a few writes before it must grow
        try:
            acknowledged.append(client.predict(_LONG_REPORT).input_id)
        except DiskFullError as error:
            return error
    raise AssertionError("the full disk never refused a prediction")


def _assert_error_shape(agent: Any, site: SiteFolder) -> None:
    response = httpx.post(
        f"{agent.url}/v1/predict",
        json={"text": _LONG_REPORT},
        headers={"Authorization": f"Bearer {site.read_token('integration')}"},
        trust_env=False,
    )
    assert response.status_code == 507
    assert response.json()["error"]["code"] == "store_full"
