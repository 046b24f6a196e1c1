"""`genba provision` and enrolment: a real CA, certificates a real handshake accepts, kits with no
private key, requests that are checked before anything is issued, and a CRL that verifies."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge_agent.config import load_agent_config
from edge_agent.site import SiteFolder
from edge_agent.site_init import enrol_site, init_site
from genba import env, keys
from genba.enrolment import EnrolmentError
from genba.errors import ConfigError, OutputPathError, UsageError
from server import pki
from server.provision import ITFolder, ProvisionConfig, add_site, provision, revoke_site

HOST = "genba-it.plant.local"
PRIVATE = ("it/ca.key", "it/superlink.key", "it/it-sign.pem")
SITE_PRIVATE = ("site-auth", "site-sign.pem", "site-tls.key")
KIT_FILES = ["ca.crt", "kit.toml", "site-tls.crt", "trusted", "trusted/it-sign.pem.pub"]


def request_for(tmp_path: Path, name: str, data: str | None = None) -> tuple[Path, SiteFolder]:
    """What a site does first: its own keys in its folder, and the request for IT."""
    root = tmp_path / "sites" / (data or name)
    request = tmp_path / "requests" / f"{data or name}.json"
    request.parent.mkdir(parents=True, exist_ok=True)
    enrol_site(root, name, request)
    return request, SiteFolder(root)


@pytest.fixture
def folder(tmp_path: Path) -> ITFolder:
    made = provision(ProvisionConfig(out=tmp_path / "it-folder", server_host=HOST))
    for name in ("site-a", "site-b"):
        add_site(made.root, request_for(tmp_path, name)[0])
    return made


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_provision_writes_the_ca_the_superlink_certificate_it_key_an_empty_crl_and_no_site(
    tmp_path: Path,
) -> None:
    made = provision(ProvisionConfig(out=tmp_path / "it-folder", server_host=HOST))
    for name in PRIVATE:
        assert mode(made.root / name) == 0o600, name
    assert mode(made.root) == 0o700
    assert made.registry() == {} and list(made.kits.iterdir()) == []
    ca = pki.load_certificate(made.ca_file)
    crl = pki.load_crl(made.crl_file)
    assert crl.is_signature_valid(ca.public_key()) and len(crl) == 0  # type: ignore[arg-type]
    assert crl.next_update_utc is not None and crl.next_update_utc >= ca.not_valid_after_utc


def test_a_kit_holds_certificates_and_public_keys_only_and_it_records_the_sites_public_halves(
    folder: ITFolder, tmp_path: Path
) -> None:
    registry = folder.registry()
    assert sorted(registry) == ["site-a", "site-b"]
    ca = pki.load_certificate(folder.ca_file)
    for name, entry in registry.items():
        kit, site = folder.kits / name, SiteFolder(tmp_path / "sites" / name)
        assert sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*")) == KIT_FILES
        for path in kit.rglob("*"):  # no private key of any kind, in any file
            assert not path.is_file() or b"PRIVATE" not in path.read_bytes(), path
        assert entry["state"] == "active" and entry["revoked_at"] is None
        # IT keeps the public halves the site made, and they are the site's.
        assert entry["auth_key"] == site.auth_key_file.with_name("site-auth.pub").read_text().strip()
        assert entry["sign_key_id"] == keys.key_id(keys.load_private_key(site.site_key_file).public_key())
        certificate = pki.load_certificate(kit / "site-tls.crt")
        assert entry["client_certificate"]["serial"] == format(certificate.serial_number, "x")
        assert entry["client_certificate"]["sha256"] == pki.certificate_sha256(certificate)
        # The client certificate: the site's own TLS key, CN = its name, client auth only, from the CA.
        own = keys.load_ec_private_key(site.tls_key_file).public_key()
        assert keys.public_key_sha256(certificate.public_key()) == keys.public_key_sha256(own)  # type: ignore[arg-type]
        assert certificate.subject.rfc4514_string() == f"CN={name}"
        certificate.verify_directly_issued_by(ca)
        assert list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.CLIENT_AUTH
        ]
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert dt.timedelta(days=729) < lifetime <= dt.timedelta(days=731)
        assert (kit / "ca.crt").read_bytes() == folder.ca_file.read_bytes()
        assert f'superlink = "{HOST}:9092"' in (kit / "kit.toml").read_text()
        assert entry["request_fingerprint"] in (kit / "kit.toml").read_text()
        # The site's keys: 0600, made there; the auth key is what flower-supernode reads.
        for key in SITE_PRIVATE:
            assert mode(site.root / "keys" / key) == 0o600, key
        private = load_ssh_private_key(site.auth_key_file.read_bytes(), password=None)
        public = load_ssh_public_key(entry["auth_key"].encode())
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.public_numbers() == private.public_key().public_numbers()
    assert len({entry["auth_key"] for entry in registry.values()}) == 2
    assert b"PRIVATE" not in b"".join(snapshot(folder.kits).values())
    assert "PRIVATE" not in folder.registry_file.read_text()


def test_a_client_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=pki.CA_DAYS - 100)
    made = provision(ProvisionConfig(out=tmp_path / "it", server_host=HOST), now=start)
    added = add_site(made.root, request_for(tmp_path, "late")[0])
    certificate = pki.load_certificate(made.kits / "late" / "site-tls.crt")
    assert certificate.not_valid_after_utc == pki.load_certificate(made.ca_file).not_valid_after_utc
    assert added["valid_until"] == certificate.not_valid_after_utc.isoformat()


def _serve_tls_once(
    folder: ITFolder, client_ca: Path | None = None, crl: Path | None = None
) -> tuple[int, threading.Thread, dict[str, Any]]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder.it / "superlink.crt", folder.it / "superlink.key")
    if client_ca is not None:  # mutual TLS, as the federation front does it
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(cafile=str(client_ca))
        if crl is not None:
            server.load_verify_locations(cafile=str(crl))
            server.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, Any] = {}

    def accept() -> None:
        with listener:
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True) as tls:
                    seen["peer"] = tls.getpeercert()
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as error:
                seen["error"] = error

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread, seen


def _handshake(port: int, ca: Path, name: str, client: SiteFolder | None = None) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(client.tls_cert_file, client.tls_key_file)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return tls.recv(2)


@pytest.mark.parametrize("name", [HOST, "localhost", "127.0.0.1"])
def test_a_site_verifies_the_superlink_with_its_kits_ca(folder: ITFolder, name: str) -> None:
    port, thread, _ = _serve_tls_once(folder)
    assert _handshake(port, folder.kits / "site-a" / "ca.crt", name) == b"ok"
    thread.join(timeout=10)


def test_another_ca_or_another_name_is_refused(folder: ITFolder, tmp_path: Path) -> None:
    other = provision(ProvisionConfig(out=tmp_path / "other", server_host=HOST))
    for ca, name in ((other.ca_file, HOST), (folder.ca_file, "evil.example.com")):
        port, thread, _ = _serve_tls_once(folder)
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(port, ca, name)
        thread.join(timeout=10)


def test_the_certificate_is_a_server_certificate_that_expires_before_its_ca(folder: ITFolder) -> None:
    leaf = pki.load_certificate(folder.it / "superlink.crt")
    ca = pki.load_certificate(folder.ca_file)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert leaf.not_valid_after_utc < ca.not_valid_after_utc


def _refused(
    folder: ITFolder, request: Path, error: type[Exception], words: str, *, more: dict[str, Any] | None = None
) -> None:
    """``add_site`` refuses ``request`` with one line containing ``words`` and writes nothing."""
    if more is not None:
        document = json.loads(request.read_text())
        document.update(more)
        request.write_text(json.dumps(document))
    before = snapshot(folder.root)
    with pytest.raises(error) as caught:
        add_site(folder.root, request)
    assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert snapshot(folder.root) == before


def _csr(site: SiteFolder, name: str) -> str:
    key = keys.load_ec_private_key(site.tls_key_file)
    return keys.certificate_request(key, name).public_bytes(serialization.Encoding.PEM).decode()


def test_a_request_that_is_not_what_the_site_made_is_refused_and_nothing_is_written(
    folder: ITFolder, tmp_path: Path
) -> None:
    # The CSR names another site than the request does (signed by the site's own key, so well formed).
    request, site = request_for(tmp_path, "site-c")
    _refused(folder, request, EnrolmentError, "not CN=site-c", more={"csr": _csr(site, "site-a")})
    # A CSR altered after the site signed it (its subject changed to match the request's new name).
    request, _ = request_for(tmp_path, "site-d")
    document = json.loads(request.read_text())
    der = x509.load_pem_x509_csr(document["csr"].encode()).public_bytes(serialization.Encoding.DER)
    tampered = x509.load_der_x509_csr(der.replace(b"site-d", b"site-x"))
    document["csr"] = tampered.public_bytes(serialization.Encoding.PEM).decode()
    _refused(folder, request, EnrolmentError, "signature is not valid", more={**document, "site": "site-x"})
    # Another site's SuperNode auth key, or signing key: each site makes its own.
    request, _ = request_for(tmp_path, "site-e")
    stolen = folder.registry()["site-a"]["auth_key"]
    _refused(
        folder,
        request,
        EnrolmentError,
        "SuperNode auth key is already site 'site-a'",
        more={"auth_key": stolen},
    )
    request, _ = request_for(tmp_path, "site-f")
    sign_pub = (tmp_path / "sites" / "site-b" / "keys" / "site-sign.pem.pub").read_text()
    _refused(
        folder, request, EnrolmentError, "signing key is already site 'site-b'", more={"sign_key": sign_pub}
    )
    # A name already provisioned, from a fresh site folder with fresh keys.
    request, _ = request_for(tmp_path, "site-a", data="second-a")
    _refused(folder, request, UsageError, "site 'site-a' is already provisioned (active)")
    # The same request sent twice: the second finds its name taken.
    request, _ = request_for(tmp_path, "site-g")
    add_site(folder.root, request)
    _refused(folder, request, UsageError, "site 'site-g' is already provisioned")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json {", "is not a readable JSON file"),
        ("[1, 2]", "is not a JSON object"),
        ('{"format": "genba-enrolment/0"}', "has format 'genba-enrolment/0'"),
        ('{"format": "genba-enrolment/1", "site": "x"}', "lacks auth_key, sign_key, csr"),
        ('{"format": "genba-enrolment/1", "site": 1, "auth_key": "", "sign_key": "", "csr": ""}', "lacks"),
    ],
)
def test_a_malformed_request_is_refused_in_one_line(
    folder: ITFolder, tmp_path: Path, content: str, words: str
) -> None:
    request = tmp_path / "bad.json"
    request.write_text(content)
    _refused(folder, request, EnrolmentError, words)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("site", "bad name!", "site name 'bad name!' must be"),
        ("auth_key", "ssh-ed25519 AAAA", "auth_key is not an OpenSSH ECDSA public key"),
        ("sign_key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "sign_key is not"),
        ("csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "csr is"),
        ("extra", "1", "unknown fields: extra"),
    ],
)
def test_a_request_with_a_bad_field_is_refused_in_one_line(
    folder: ITFolder, tmp_path: Path, field: str, value: str, words: str
) -> None:
    request, _ = request_for(tmp_path, "site-c")
    _refused(folder, request, EnrolmentError, words, more={field: value})


def test_a_request_whose_tls_key_is_its_auth_key_is_refused(folder: ITFolder, tmp_path: Path) -> None:
    request, site = request_for(tmp_path, "site-c")
    key = keys.load_ec_private_key(site.tls_key_file)
    _refused(
        folder, request, EnrolmentError, "are the same key",
        more={"auth_key": keys.auth_public_line(key.public_key())},
    )  # fmt: skip


def test_a_failure_while_writing_a_kit_leaves_nothing(
    folder: ITFolder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request, _ = request_for(tmp_path, "site-c")
    before = snapshot(folder.root)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pki, "write_certificate", broken)
    with pytest.raises(OSError):
        add_site(folder.root, request)
    assert snapshot(folder.root) == before
    assert sorted(p.name for p in folder.kits.iterdir()) == ["site-a", "site-b"]  # no staging left
    monkeypatch.undo()
    assert add_site(folder.root, request)["site"] == "site-c"  # the same request, once the disk is back


def test_revoking_a_site_lists_its_certificate_in_a_crl_that_verifies_under_the_ca(
    folder: ITFolder, tmp_path: Path
) -> None:
    ca = pki.load_certificate(folder.ca_file)
    serial = int(folder.registry()["site-b"]["client_certificate"]["serial"], 16)
    first = pki.load_crl(folder.crl_file)
    entry = revoke_site(folder.root, "site-b")
    assert entry["state"] == "revoked" and entry["revoked_at"]
    crl = pki.load_crl(folder.crl_file)
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.subject
    assert [revoked.serial_number for revoked in crl] == [serial]
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    assert sorted(p.name for p in folder.it.iterdir() if p.name.startswith(".")) == []  # no temporary left
    assert not (folder.kits / "site-b").exists()
    assert folder.registry()["site-b"]["auth_key"]  # the record stays, so the name is never reused
    revoke_site(folder.root, "site-a")
    assert len(pki.load_crl(folder.crl_file)) == 2
    with pytest.raises(UsageError, match="already revoked"):
        revoke_site(folder.root, "site-b")
    request, _ = request_for(tmp_path, "site-b", data="site-b-again")
    _refused(folder, request, UsageError, "site 'site-b' is already provisioned (revoked)")
    with pytest.raises(UsageError, match="no site 'site-z' was provisioned here; known sites: site-a"):
        revoke_site(folder.root, "site-z")
    with pytest.raises(UsageError, match="not a folder made by 'genba provision'"):
        add_site(folder.kits, request)


def test_the_front_admits_an_enrolled_sites_certificate_and_refuses_it_once_revoked(
    folder: ITFolder, tmp_path: Path
) -> None:
    """Mutual TLS as the front does it: the kit's CA for client certificates, the CRL for the leaf."""
    site_a, site_b = (SiteFolder(tmp_path / "sites" / name) for name in ("site-a", "site-b"))
    for name in ("site-a", "site-b"):
        init_site(tmp_path / "sites" / name, site_name=None, kit=folder.kits / name)
    revoke_site(folder.root, "site-b")
    port, thread, seen = _serve_tls_once(folder, folder.ca_file, folder.crl_file)
    assert _handshake(port, site_a.ca_file, HOST, site_a) == b"ok"
    thread.join(timeout=10)
    assert dict(entry[0] for entry in seen["peer"]["subject"]) == {"commonName": "site-a"}
    port, thread, seen = _serve_tls_once(folder, folder.ca_file, folder.crl_file)
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(port, site_b.ca_file, HOST, site_b)
        raise OSError("the revoked site's handshake completed")  # pragma: no cover
    thread.join(timeout=10)
    assert "revoked" in str(seen.get("error", "")).lower(), seen


def test_bad_input_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="port"):
        ProvisionConfig(out=tmp_path / "x", server_host=HOST, port=0)
    with pytest.raises(UsageError, match="not a host name or IP address"):
        ProvisionConfig(out=tmp_path / "x", server_host="https://it:9092")
    taken = tmp_path / "taken"
    taken.mkdir()
    with pytest.raises(OutputPathError):
        provision(ProvisionConfig(out=taken, server_host=HOST))
    assert list(taken.iterdir()) == []

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pki, "write_crl", broken)
    with pytest.raises(OSError):
        provision(ProvisionConfig(out=tmp_path / "half", server_host=HOST))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no folder, no staging left


def test_a_site_initialised_from_its_kit_keeps_its_own_keys_and_has_what_joining_needs(
    folder: ITFolder, tmp_path: Path
) -> None:
    root = tmp_path / "sites" / "site-a"
    own = {name: (root / "keys" / name).read_bytes() for name in SITE_PRIVATE}
    kit = folder.kits / "site-a"
    site = init_site(root, site_name=None, kit=kit)
    assert load_agent_config(site.config_file).site == "site-a" and not site.awaiting_kit
    assert {name: (root / "keys" / name).read_bytes() for name in SITE_PRIVATE} == own  # untouched
    assert site.ca_file.read_bytes() == (kit / "ca.crt").read_bytes()
    assert site.tls_cert_file.read_bytes() == (kit / "site-tls.crt").read_bytes()
    assert site.kit_file.read_text() == (kit / "kit.toml").read_text()
    # The site signs its own candidates with the key IT recorded; only IT's key is a trusted signer.
    assert (
        keys.key_id(keys.load_private_key(site.site_key_file).public_key())
        == folder.registry()["site-a"]["sign_key_id"]
    )
    assert [keys.key_id(k) for k in site.trusted_keys()] == [
        keys.key_id(keys.load_public_key(folder.it / "it-sign.pem.pub"))
    ]


def test_a_kit_for_another_site_or_another_key_or_from_another_ca_is_refused_at_init(
    folder: ITFolder, tmp_path: Path
) -> None:
    site_a = tmp_path / "sites" / "site-a"

    def refused(root: Path, kit: Path, words: str) -> None:
        before = snapshot(root)
        with pytest.raises(EnrolmentError) as caught:
            init_site(root, site_name=None, kit=kit)
        assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
        assert snapshot(root) == before and SiteFolder(root).awaiting_kit

    refused(site_a, folder.kits / "site-b", "is the kit for site 'site-b', but")
    # Two folders enrolled under one name: IT answered the first; the second's key is not certified.
    first, _ = request_for(tmp_path, "site-c", data="site-c-1")
    request_for(tmp_path, "site-c", data="site-c-2")
    add_site(folder.root, first)
    refused(tmp_path / "sites" / "site-c-2", folder.kits / "site-c", "certifies another key than this site's")
    # The right certificate, but the kit's CA is another one (a kit put together by someone else).
    other = provision(ProvisionConfig(out=tmp_path / "other", server_host=HOST))
    forged = tmp_path / "forged"
    forged.mkdir()
    for path in (folder.kits / "site-a").rglob("*"):
        target = forged / path.relative_to(folder.kits / "site-a")
        if path.is_dir():
            target.mkdir()
        else:
            target.write_bytes(other.ca_file.read_bytes() if path.name == "ca.crt" else path.read_bytes())
    refused(site_a, forged, "is not signed by the kit's CA")
    assert init_site(site_a, site_name=None, kit=folder.kits / "site-a").config_file.is_file()


def test_a_kit_that_carries_private_keys_is_refused_with_a_line_that_says_to_enrol(
    folder: ITFolder, tmp_path: Path
) -> None:
    """A kit made by the previous release (the site's keys made at IT) is never installed."""
    old = tmp_path / "old-kit"
    (old / "trusted").mkdir(parents=True)
    (old / "kit.toml").write_text('[site]\nname = "site-a"\n[federation]\nauth_key = "site-auth"\n')
    (old / "ca.crt").write_bytes(folder.ca_file.read_bytes())
    (old / "trusted" / "it-sign.pem.pub").write_bytes((folder.it / "it-sign.pem.pub").read_bytes())
    pki.write_auth_key_pair(pki.new_auth_key(), old / "site-auth")
    keys.write_key_pair(keys.generate_signing_key(), old / "site-sign.pem")
    for root in (tmp_path / "sites" / "site-a", tmp_path / "fresh"):  # enrolled or not
        with pytest.raises(EnrolmentError) as caught:
            init_site(root, site_name=None, kit=old)
        message = str(caught.value)
        assert "carries private keys (site-auth, site-sign.pem)" in message and "--enrol-request" in message
        assert "\n" not in message
    assert not (tmp_path / "fresh").exists()
    assert not (tmp_path / "sites" / "site-a" / "agent.toml").exists()


def test_the_cli_enrols_a_site_and_prints_json_and_one_line_errors(tmp_path: Path) -> None:
    def genba(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genba", *args],
            capture_output=True, text=True, env=env.child_environment(), timeout=120,
        )  # fmt: skip

    out, data, request = tmp_path / "it-folder", tmp_path / "site-c", tmp_path / "site-c.json"
    made = genba("provision", "--out", str(out), "--server-host", "10.0.4.2")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["it"] == str(out / "it")
    enrolled = genba(
        "agent", "init", "--data", str(data), "--site", "site-c", "--enrol-request", f"{request}"
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert enrolled.stdout.count("\n") == 1  # one JSON line
    line = json.loads(enrolled.stdout)
    assert line["request"] == str(request) and len(line["fingerprint"]) == 24
    refused_serve = genba("agent", "serve", "--data", str(data))
    assert refused_serve.returncode == 2 and refused_serve.stderr.count("\n") == 1
    assert "awaiting its kit" in refused_serve.stderr and "--kit KIT" in refused_serve.stderr
    added = genba("provision", "--out", str(out), "add-site", "--request", str(request))
    assert added.returncode == 0, added.stderr
    answer = json.loads(added.stdout)
    assert answer["fingerprint"] == line["fingerprint"] and answer["kit"] == str(out / "sites" / "site-c")
    finished = genba("agent", "init", "--data", str(data), "--kit", answer["kit"])
    assert finished.returncode == 0, finished.stderr
    for args, words in (
        (("provision", "--out", str(out), "--server-host", "h"), "already exists"),
        (("provision", "--out", str(tmp_path / "n")), "needs --server-host HOST"),
        (("provision", "--out", f"{tmp_path}/n", "--server-host", "h", "--sites", "a"), "add-site --request"),
        (("provision", "--out", str(out), "add-site", "--request", str(request)), "already provisioned"),
        (("provision", "--out", str(out), "revoke-site", "zz"), "no site 'zz'"),
        (("agent", "init", "--data", f"{tmp_path}/d", "--enrol-request", f"{tmp_path}/r"), "--site NAME"),
    ):
        failed = genba(*args)
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and words in failed.stderr, (
            failed.stderr
        )
    assert not (tmp_path / "n").exists()
    revoked = genba("provision", "--out", str(out), "revoke-site", "site-c")
    assert revoked.returncode == 0, revoked.stderr
    assert len(pki.load_crl(out / "it" / "crl.pem")) == 1


def test_an_it_folder_given_as_a_relative_path_is_held_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = ITFolder(Path("relative-it"))
    assert folder.root == tmp_path / "relative-it" and folder.it.is_absolute()  # Flower's files need it
