"""packaging/install.sh against a real wheelhouse built here from local wheels only.

The kit is checked before anything is written; pip installs with no index and every hash pinned;
the install lands in the prefix and nowhere else; a failure at any step leaves no prefix behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from genba.checksums import verify_checksums, write_checksums

INSTALL_SH = Path(__file__).resolve().parents[2] / "packaging" / "install.sh"


def _environment(tmp_path: Path) -> dict[str, str]:
    """A HOME and TMPDIR of the test's own, so that anything written outside the prefix shows."""
    home, scratch = tmp_path / "home", tmp_path / "tmpdir"
    home.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "TMPDIR": str(scratch)}


def _as_installed() -> dict[str, str]:
    """The environment a program of the prefix runs in: no PYTHONPATH from the test run around it."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _install(wheelhouse: Path, prefix: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(wheelhouse / "install.sh"), "--prefix", str(prefix), "--role", "base"]
    command += ["--python", sys.executable, *extra]
    return subprocess.run(command, capture_output=True, text=True, env=_environment(tmp_path), timeout=300)


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("install.sh: error: ")
    return lines[0]


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_the_wheelhouse_pins_every_wheel_by_hash(base_wheelhouse: Path) -> None:
    requirements = (base_wheelhouse / "requirements-base.txt").read_text()
    hashes = set(
        line.split("sha256:")[1].strip(" \\") for line in requirements.splitlines() if "--hash" in line
    )
    wheels = sorted(base_wheelhouse.glob("*.whl"))
    from genba.bundle import sha256_file

    assert {sha256_file(wheel) for wheel in wheels} == hashes
    assert {w.name.split("-")[0].lower() for w in wheels} == {
        "genba",
        "cryptography",
        "cffi",
        "pycparser",
        "tomli_w",
    }
    assert verify_checksums(base_wheelhouse) == len(list(base_wheelhouse.iterdir())) - 1


def test_install_lands_in_the_prefix_and_nowhere_else(base_wheelhouse: Path, tmp_path: Path) -> None:
    base_site = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    before = {
        "wheelhouse": _tree(base_wheelhouse),
        "python": sorted(p.name for p in (base_site / "site-packages").iterdir()),
    }
    prefix = tmp_path / "opt" / "genba"

    done = _install(base_wheelhouse, prefix, tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"into {prefix}" in done.stdout
    assert before["wheelhouse"] == _tree(base_wheelhouse)
    assert before["python"] == sorted(p.name for p in (base_site / "site-packages").iterdir())
    assert _tree(tmp_path / "home") == {} and _tree(tmp_path / "tmpdir") == {}  # no cache, no log left
    assert not (prefix / ".genba-install-incomplete").exists()
    # no installer is left in the prefix: nothing adds packages to it later (an upgrade is a new prefix)
    assert not list(prefix.glob("bin/pip*")) and not list(prefix.glob("lib/python*/site-packages/pip"))
    probe = (
        "import genba, sys, cryptography, tomli_w; print(sys.prefix, genba.__file__, cryptography.__file__)"
    )
    where = subprocess.run(
        [str(prefix / "bin/python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=_as_installed(),
    )  # not from the source tree, whose genba/ would shadow the installed one
    assert all(path.startswith(str(prefix)) for path in where.stdout.split())
    keys = subprocess.run(
        [str(prefix / "bin/genba"), "keys", "new", "--out", str(tmp_path / "k.pem")],
        capture_output=True,
        env=_as_installed(),
        text=True,
    )
    assert keys.returncode == 0 and json.loads(keys.stdout)["key_id"], keys.stderr
    train = subprocess.run(
        [str(prefix / "bin/genba"), "agent", "train", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env=_as_installed(),
    )
    assert train.returncode == 8 and "site-learn" in train.stderr  # the base role: no torch
    assert _one_line_error(_install(base_wheelhouse, prefix, tmp_path)).endswith("section Upgrade)")


def test_a_pythonpath_in_the_callers_environment_does_not_leak_into_the_install(
    base_wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another environment's packages on PYTHONPATH would satisfy every requirement, leaving the prefix
    without them (seen in a full test run, where an earlier test left the development venv on it)."""
    site_packages = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    monkeypatch.setenv("PYTHONPATH", f"{site_packages}{os.pathsep}.")
    prefix = tmp_path / "prefix"

    done = _install(base_wheelhouse, prefix, tmp_path)

    assert done.returncode == 0, done.stderr
    installed = {p.name.split("-")[0] for p in prefix.glob("lib/python*/site-packages/*.dist-info")}
    assert {"genba", "cryptography", "tomli_w"} <= installed


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    ["changed wheel", "changed requirements", "added wheel", "removed wheel", "link", "malformed sums"],
)
def test_a_damaged_kit_is_refused_before_anything_is_written(
    wheelhouse_copy: Path, tmp_path: Path, damage: str
) -> None:
    wheel = next(wheelhouse_copy.glob("tomli_w-*.whl"))
    if damage == "changed wheel":
        _flip_last_byte(wheel)
    elif damage == "changed requirements":
        with (wheelhouse_copy / "requirements-base.txt").open("a") as stream:
            stream.write("evil==1.0 --hash=sha256:" + "0" * 64 + "\n")
    elif damage == "added wheel":
        (wheelhouse_copy / "evil-1.0-py3-none-any.whl").write_bytes(wheel.read_bytes())
    elif damage == "removed wheel":
        wheel.unlink()
    elif damage == "link":
        (wheelhouse_copy / "extra.whl").symlink_to(wheel)
    else:
        with (wheelhouse_copy / "SHA256SUMS").open("a") as stream:
            stream.write(f"{'0' * 64}  ../outside\n")
    prefix = tmp_path / "prefix"

    error = _one_line_error(_install(wheelhouse_copy, prefix, tmp_path))

    assert not prefix.exists()
    assert _tree(tmp_path / "tmpdir") == {}
    expected = {
        "changed wheel": f"{wheel.name} does not match SHA256SUMS",
        "changed requirements": "requirements-base.txt does not match SHA256SUMS",
        "added wheel": "evil-1.0-py3-none-any.whl is not listed in SHA256SUMS",
        "removed wheel": f"{wheel.name} is listed in SHA256SUMS but missing",
        "link": "holds a link",
        "malformed sums": "SHA256SUMS has a malformed line",
    }[damage]
    assert expected in error


def test_a_checksum_file_other_than_the_announced_one_is_refused(
    wheelhouse_copy: Path, tmp_path: Path
) -> None:
    error = _one_line_error(
        _install(wheelhouse_copy, tmp_path / "prefix", tmp_path, "--sums-sha256", "ab" * 32)
    )
    assert "not the checksum file IT announced" in error
    assert not (tmp_path / "prefix").exists()


def _rebuilt_with_other_content(wheel: Path) -> None:
    """The same wheel name, a valid wheel, other bytes: what a swapped or tampered wheel looks like."""
    original = wheel.read_bytes()
    wheel.unlink()
    source = wheel.with_suffix(".orig")
    source.write_bytes(original)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            new.writestr(item, old.read(item) + (b"\n# changed\n" if item.filename.endswith(".py") else b""))
    source.unlink()


def test_a_wheel_whose_hash_differs_from_the_requirements_is_refused_by_pip(
    wheelhouse_copy: Path, tmp_path: Path
) -> None:
    _rebuilt_with_other_content(next(wheelhouse_copy.glob("tomli_w-*.whl")))
    write_checksums(wheelhouse_copy)  # the checksum file agrees: only pip's --require-hashes stands
    prefix = tmp_path / "prefix"

    error = _one_line_error(_install(wheelhouse_copy, prefix, tmp_path))

    assert "tomli-w==1.2.0" in error or "tomli-w" in error
    assert "does not match its --hash" in error and f"{prefix} removed" in error
    assert not prefix.exists()


def test_a_role_the_wheelhouse_was_not_built_for_is_refused(base_wheelhouse: Path, tmp_path: Path) -> None:
    command = ["bash", str(base_wheelhouse / "install.sh"), "--prefix", str(tmp_path / "p"), "--role", "site"]
    done = subprocess.run(command, capture_output=True, text=True, env=_environment(tmp_path), timeout=60)
    assert "holds no requirements for role 'site' (it holds: base)" in _one_line_error(done)
    assert not (tmp_path / "p").exists()


def test_an_interrupted_install_leaves_no_prefix_and_the_next_one_replaces_a_stale_one(
    base_wheelhouse: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    command = ["bash", str(base_wheelhouse / "install.sh"), "--prefix", str(prefix), "--role", "base"]
    running = subprocess.Popen(
        [*command, "--python", sys.executable],
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (prefix / "bin" / "python").exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.poll() is None, "the install ended before its venv appeared: nothing to interrupt"
    os.killpg(running.pid, signal.SIGTERM)  # the venv exists, pip has not finished: mid-install
    _, stderr = running.communicate(timeout=120)
    assert running.returncode != 0
    assert not prefix.exists(), stderr

    (prefix / "bin").mkdir(parents=True)  # what a killed -9 install leaves: the marker says so
    (prefix / ".genba-install-incomplete").touch()
    done = _install(base_wheelhouse, prefix, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "left by an interrupted install" in done.stderr
    assert (prefix / "bin" / "genba").is_file()
