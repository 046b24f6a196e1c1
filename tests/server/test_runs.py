"""How a Flower run IT starts ends when no SuperLink answers: one line saying what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genba.federation import FAB_DIR
from genba.tools import free_loopback_port
from server.runs import RunInterruptedError, connection_address, flwr_run, new_run_dir
from server.superlink import ServerFolder, SuperLinkError


def test_a_run_no_superlink_takes_says_to_start_one_and_is_not_called_interrupted(
    tmp_path: Path, enrolment: Any
) -> None:
    folder, _ = enrolment.provision_with_sites(tmp_path, ("site-a",))
    server = ServerFolder(folder)
    server.flwr_home.mkdir(parents=True)
    address = f"127.0.0.1:{free_loopback_port()}"  # where a SuperLink ran, and no longer runs
    (server.flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "genba"\n\n[superlink.genba]\naddress = "{address}"\n'
        f'root-certificates = "{folder.it / "ca.crt"}"\n',
        encoding="utf-8",
    )
    assert connection_address(server) == address

    with pytest.raises(SuperLinkError) as refused:
        flwr_run(server, FAB_DIR, new_run_dir(server.root / "runs"), {"action": "publish"}, timeout_s=120)
    assert not isinstance(refused.value, RunInterruptedError)
    assert str(refused.value) == (
        f"no SuperLink answers at {address}: start it ('genba server start --kit {folder.root}'), "
        "then the run again"
    )


def test_a_run_that_does_not_end_in_time_says_so_in_one_line(tmp_path: Path, enrolment: Any) -> None:
    import socket

    folder, _ = enrolment.provision_with_sites(tmp_path, ("site-a",))
    server = ServerFolder(folder)
    server.flwr_home.mkdir(parents=True)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        (server.flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "genba"\n\n[superlink.genba]\naddress = "{address}"\n'
            f'root-certificates = "{folder.it / "ca.crt"}"\n',
            encoding="utf-8",
        )
        run_dir = new_run_dir(server.root / "runs")
        with pytest.raises(SuperLinkError) as late:
            flwr_run(server, FAB_DIR, run_dir, {"action": "publish"}, timeout_s=3)
    assert str(late.value).startswith(
        f"run {run_dir.name} did not end within 3 s (too few sites connected?); "
    )
    assert len(str(late.value).splitlines()) == 1
