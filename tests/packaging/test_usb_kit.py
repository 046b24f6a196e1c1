"""A site's USB kit: every input checked before anything is written, and the installer in the kit
checks the whole kit (site kit and bundles too) before it installs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genba.checksums import read_checksums, verify_checksums
from genba.cli import main
from genba.errors import ConfigError, KitIntegrityError, SignatureError, UsageError
from genba.usb_kit import UsbKitConfig, build_usb_kit


@pytest.fixture
def site_kit(tmp_path: Path, keypair: tuple[Path, Path]) -> Path:
    """A site kit as 'genba provision add-site' writes one: settings, CA, trusted IT key; no private key."""
    kit = tmp_path / "press-1"
    (kit / "trusted").mkdir(parents=True)
    (kit / "kit.toml").write_text('[site]\nname = "press-1"\n', encoding="utf-8")
    (kit / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", encoding="utf-8")
    shutil.copy(keypair[1], kit / "trusted" / "it-sign.pem.pub")
    return kit


def _nothing_beside(out: Path) -> bool:
    return not out.exists() and not any(
        p.name.startswith(f".{out.name}.partial-") for p in out.parent.iterdir()
    )


def test_the_kit_holds_everything_and_its_installer_checks_all_of_it_first(
    base_wheelhouse: Path, site_kit: Path, bert_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "usb"
    code = main(
        ["package", "usb-kit", "--wheelhouse", str(base_wheelhouse), "--site-kit", str(site_kit)]
        + ["--bundle", str(bert_bundle), "--out", str(out)]
    )

    assert code == 0
    listed = read_checksums(out)
    assert verify_checksums(out) == len(listed)
    assert {"install.sh", "README.txt", "site-kit/kit.toml", "wheelhouse/SHA256SUMS"} <= set(listed)
    assert any(path.startswith(f"bundles/{bert_bundle.name}/") for path in listed)
    assert "genba agent init --data /var/lib/genba/site --kit site-kit" in (out / "README.txt").read_text()
    with (out / "site-kit" / "kit.toml").open("a") as stream:  # outside the wheelhouse: still checked
        stream.write('superlink = "evil.example:9092"\n')
    command = ["bash", str(out / "install.sh"), "--prefix", str(tmp_path / "p"), "--role", "base"]
    done = subprocess.run([*command, "--python", sys.executable], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == f"install.sh: error: {out}/site-kit/kit.toml does not match SHA256SUMS " + (
        "(tampered or damaged kit); copy the kit again"
    )
    assert not (tmp_path / "p").exists()


def test_a_kit_installs_from_its_own_folder(base_wheelhouse: Path, site_kit: Path, tmp_path: Path) -> None:
    out = tmp_path / "usb"
    summary = build_usb_kit(UsbKitConfig(wheelhouse=base_wheelhouse, out=out, site_kit=site_kit))
    prefix = tmp_path / "opt" / "genba"
    command = [
        "bash",
        str(out / "install.sh"),
        "--prefix",
        str(prefix),
        "--python",
        sys.executable,
    ]  # no --role
    done = subprocess.run(
        [*command, "--sums-sha256", summary["sha256sums_sha256"]], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("installed genba 0.1.0 (role base)")  # the one role the kit holds
    assert (prefix / "bin" / "genba").is_file()


def test_a_site_kit_holding_a_private_key_goes_no_further(
    base_wheelhouse: Path, site_kit: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    shutil.copy(keypair[0], site_kit / "it-sign.pem")
    out = tmp_path / "usb"
    with pytest.raises(UsageError, match="holds a private key"):
        build_usb_kit(UsbKitConfig(wheelhouse=base_wheelhouse, out=out, site_kit=site_kit))
    assert _nothing_beside(out)


def test_a_bundle_the_site_would_not_trust_is_refused(
    base_wheelhouse: Path, site_kit: Path, bert_bundle: Path, other_keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    shutil.copy(other_keypair[1], site_kit / "trusted" / "it-sign.pem.pub")  # the site trusts another key
    out = tmp_path / "usb"
    with pytest.raises(SignatureError):
        build_usb_kit(
            UsbKitConfig(wheelhouse=base_wheelhouse, out=out, site_kit=site_kit, bundles=(bert_bundle,))
        )
    assert _nothing_beside(out)


def test_a_damaged_wheelhouse_is_refused(wheelhouse_copy: Path, site_kit: Path, tmp_path: Path) -> None:
    (wheelhouse_copy / "extra.whl").write_bytes(b"not listed")
    out = tmp_path / "usb"
    with pytest.raises(KitIntegrityError, match="extra.whl is not listed"):
        build_usb_kit(UsbKitConfig(wheelhouse=wheelhouse_copy, out=out, site_kit=site_kit))
    assert _nothing_beside(out)


def test_every_problem_of_the_inputs_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = UsbKitConfig(wheelhouse=tmp_path / "none", out=tmp_path / "usb", bundles=(tmp_path / "b.tar",))
    with pytest.raises(ConfigError) as raised:
        build_usb_kit(config)
    assert len(raised.value.problems) == 3  # no wheelhouse, no bundle file, no key to check bundles with
    code = main(
        ["package", "usb-kit", "--wheelhouse", str(tmp_path / "none"), "--out", str(tmp_path / "usb")]
    )
    assert code == 2 and "carries a site kit, bundles or trusted keys" in capsys.readouterr().err
    assert json.dumps(raised.value.problems)  # plain strings


def test_a_standalone_site_gets_the_signers_key_its_bundles_were_checked_against(
    base_wheelhouse: Path, bert_bundle: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "usb"
    summary = build_usb_kit(
        UsbKitConfig(wheelhouse=base_wheelhouse, out=out, bundles=(bert_bundle,), trust=(keypair[1],))
    )
    assert summary["bundles"][0]["bundle"] == bert_bundle.name and not summary["site_kit"]
    assert (out / "trusted" / keypair[1].name).read_bytes() == keypair[1].read_bytes()
    assert f"--trust trusted/{keypair[1].name}" in (out / "README.txt").read_text()
    assert not (out / "site-kit").exists()
    verify_checksums(out)
