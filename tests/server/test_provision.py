"""`genba provision`: a real CA, a TLS certificate a real handshake accepts, and kits a site can use."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from edge_agent.config import load_agent_config
from edge_agent.site_init import init_site
from genba import env, keys
from genba.errors import ConfigError, OutputPathError, UsageError
from server import pki
from server.provision import ITFolder, ProvisionConfig, add_site, provision, revoke_site

HOST = "genba-it.plant.local"
PRIVATE = ("it/ca.key", "it/superlink.key", "it/it-sign.pem")
KIT_PRIVATE = ("site-auth", "site-sign.pem")


@pytest.fixture
def folder(tmp_path: Path) -> ITFolder:
    return provision(
        ProvisionConfig(out=tmp_path / "it-folder", server_host=HOST, sites=("site-a", "site-b"))
    )


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_provision_writes_the_ca_the_superlink_certificate_it_key_and_a_kit_per_site(
    folder: ITFolder,
) -> None:
    for name in PRIVATE:
        assert mode(folder.root / name) == 0o600, name
    assert mode(folder.root) == 0o700
    registry = folder.registry()
    assert sorted(registry) == ["site-a", "site-b"]
    for site, entry in registry.items():
        kit = folder.kits / site
        for name in KIT_PRIVATE:
            assert mode(kit / name) == 0o600
        assert entry["state"] == "active" and entry["revoked_at"] is None
        # IT keeps the public halves only, and they are the kit's.
        assert entry["auth_key"] == (kit / "site-auth.pub").read_text().strip()
        assert entry["sign_key_id"] == keys.key_id(keys.load_public_key(kit / "site-sign.pem.pub"))
        assert (kit / "ca.crt").read_bytes() == (folder.it / "ca.crt").read_bytes()
        assert sorted(p.name for p in (kit / "trusted").iterdir()) == ["it-sign.pem.pub"]
        assert f'superlink = "{HOST}:9092"' in (kit / "kit.toml").read_text()
        # What flower-supernode and `flwr supernode register` read: OpenSSH ECDSA on a NIST curve.
        private = load_ssh_private_key((kit / "site-auth").read_bytes(), password=None)
        public = load_ssh_public_key((kit / "site-auth.pub").read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.public_numbers() == private.public_key().public_numbers()
    assert len({entry["auth_key"] for entry in registry.values()}) == 2
    assert "PRIVATE" not in folder.registry_file.read_text()


def _serve_tls_once(folder: ITFolder) -> tuple[int, threading.Thread]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder.it / "superlink.crt", folder.it / "superlink.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        with listener:
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread


def _handshake(port: int, ca: Path, name: str) -> bytes:
    client = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return tls.recv(2)


@pytest.mark.parametrize("name", [HOST, "localhost", "127.0.0.1"])
def test_a_site_verifies_the_superlink_with_its_kits_ca(folder: ITFolder, name: str) -> None:
    port, thread = _serve_tls_once(folder)
    assert _handshake(port, folder.kits / "site-a" / "ca.crt", name) == b"ok"
    thread.join(timeout=10)


def test_another_ca_or_another_name_is_refused(folder: ITFolder, tmp_path: Path) -> None:
    other = provision(ProvisionConfig(out=tmp_path / "other", server_host=HOST, sites=("x",)))
    for ca, name in ((other.it / "ca.crt", HOST), (folder.it / "ca.crt", "evil.example.com")):
        port, thread = _serve_tls_once(folder)
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, ca, name)
        thread.join(timeout=10)


def test_the_certificate_is_a_server_certificate_that_expires_before_its_ca(folder: ITFolder) -> None:
    from cryptography import x509

    leaf = pki.load_certificate(folder.it / "superlink.crt")
    ca = pki.load_certificate(folder.it / "ca.crt")
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert leaf.not_valid_after_utc < ca.not_valid_after_utc


def test_add_and_revoke_sites(folder: ITFolder) -> None:
    kit = add_site(folder.root, "site-c")
    assert (kit / "site-auth").is_file() and folder.registry()["site-c"]["state"] == "active"
    with pytest.raises(UsageError, match="already provisioned"):
        add_site(folder.root, "site-a")
    entry = revoke_site(folder.root, "site-b")
    assert entry["state"] == "revoked" and entry["revoked_at"]
    assert not (folder.kits / "site-b").exists()  # its private keys go with it
    assert folder.registry()["site-b"]["auth_key"]  # the record stays, so the name is never reused
    with pytest.raises(UsageError, match="already revoked"):
        revoke_site(folder.root, "site-b")
    with pytest.raises(UsageError, match="already provisioned \\(revoked\\)"):
        add_site(folder.root, "site-b")
    with pytest.raises(UsageError, match="no site 'site-z' was provisioned here; known sites: site-a"):
        revoke_site(folder.root, "site-z")
    with pytest.raises(UsageError, match="not a folder made by 'genba provision'"):
        add_site(folder.kits, "site-d")


def test_bad_input_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        ProvisionConfig(out=tmp_path / "x", server_host=HOST, sites=("a", "a", "bad name"), port=0)
    assert len(caught.value.problems) == 3
    with pytest.raises(UsageError, match="not a host name or IP address"):
        ProvisionConfig(out=tmp_path / "x", server_host="https://it:9092", sites=("a",))
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(OutputPathError):
        provision(ProvisionConfig(out=taken, server_host=HOST, sites=("a",)))
    assert list(taken.iterdir()) == []

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pki, "write_auth_key_pair", broken)
    with pytest.raises(OSError):
        provision(ProvisionConfig(out=tmp_path / "half", server_host=HOST, sites=("a",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no folder, no staging left


def test_a_site_initialised_from_its_kit_has_what_joining_needs(folder: ITFolder, tmp_path: Path) -> None:
    kit = folder.kits / "site-a"
    site = init_site(tmp_path / "data", site_name=None, kit=kit)
    assert load_agent_config(site.config_file).site == "site-a"
    assert site.auth_key_file.read_bytes() == (kit / "site-auth").read_bytes()
    assert mode(site.auth_key_file) == 0o600
    assert site.ca_file.read_bytes() == (kit / "ca.crt").read_bytes()
    assert site.kit_file.read_text() == (kit / "kit.toml").read_text()
    # The site signs its own candidates with the key IT recorded; only IT's key is a trusted signer.
    assert (
        keys.key_id(keys.load_private_key(site.site_key_file).public_key())
        == folder.registry()["site-a"]["sign_key_id"]
    )
    assert [keys.key_id(k) for k in site.trusted_keys()] == [
        keys.key_id(keys.load_public_key(folder.it / "it-sign.pem.pub"))
    ]


def test_the_cli_prints_json_and_one_line_errors(tmp_path: Path) -> None:
    def genba(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genba", "provision", *args],
            capture_output=True, text=True, env=env.child_environment(), timeout=120,
        )  # fmt: skip

    out = tmp_path / "it-folder"
    made = genba("--out", str(out), "--server-host", "10.0.4.2", "--sites", "a", "b")
    assert made.returncode == 0, made.stderr
    assert sorted(json.loads(made.stdout)["kits"]) == ["a", "b"]
    added = genba("--out", str(out), "add-site", "c")
    assert added.returncode == 0 and json.loads(added.stdout)["kit"].endswith("/c")
    for args, words in (
        (("--out", str(out), "--server-host", "h", "--sites", "a"), "already exists"),
        (("--out", str(tmp_path / "n")), "needs --server-host HOST and --sites"),
        (("--out", str(out), "revoke-site", "zz"), "no site 'zz'"),
    ):
        failed = genba(*args)
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and words in failed.stderr, (
            failed.stderr
        )


def test_an_it_folder_given_as_a_relative_path_is_held_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = ITFolder(Path("relative-it"))
    assert folder.root == tmp_path / "relative-it" and folder.it.is_absolute()  # Flower's files need it
