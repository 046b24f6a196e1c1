"""Site folders, settings and tokens: what `genba agent init` creates and how it is checked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import config_from_mapping, load_agent_config
from edge_agent.federation.supernode import JoinConfig, SuperNode
from edge_agent.service.auth import PERMISSIONS, TokenRegistry, authorize
from edge_agent.site import ROLES, SiteFolder
from edge_agent.site_init import enrol_site, init_site
from genba import keys
from genba.enrolment import EnrolmentRequest
from genba.errors import (
    AgentUnavailableError,
    AuthenticationError,
    ConfigError,
    KeyFileError,
    OutputPathError,
    PermissionDeniedError,
    UsageError,
)
from genba.versions import ModelVersion


def test_init_writes_settings_trusted_keys_and_a_private_token_per_role(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    site = init_site(tmp_path / "data", site_name="line-3", trust=[keypair[1]])
    config = load_agent_config(site.config_file)
    assert config.site == "line-3" and config.api.host == "127.0.0.1" and config.runtime.provider == "auto"
    assert len(site.trusted_keys()) == 1
    tokens = {role: site.read_token(role) for role in ROLES}
    assert len(set(tokens.values())) == 3 and all(len(t) >= 40 for t in tokens.values())
    for role in ROLES:
        mode = stat.S_IMODE(os.stat(site.token_file(role)).st_mode)
        assert mode & 0o007 == 0, f"{role} token is readable by others"


def test_init_refuses_an_existing_site_a_missing_key_and_no_key(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    init_site(tmp_path / "data", site_name="a", trust=[keypair[1]])
    with pytest.raises(OutputPathError, match="already a site folder"):
        init_site(tmp_path / "data", site_name="a", trust=[keypair[1]])
    with pytest.raises(KeyFileError, match="not found"):
        init_site(tmp_path / "other", site_name="a", trust=[tmp_path / "missing.pub"])
    with pytest.raises(UsageError, match="at least one trusted key"):
        init_site(tmp_path / "third", site_name="a")
    with pytest.raises(ConfigError, match="site name"):
        init_site(tmp_path / "fourth", site_name="bad name!", trust=[keypair[1]])
    assert not (tmp_path / "fourth").exists()


def test_enrolment_makes_the_sites_own_keys_and_a_request_with_their_public_halves_only(
    tmp_path: Path,
) -> None:
    request = tmp_path / "press-1.json"
    enrolled = enrol_site(tmp_path / "data", "press-1", request)
    site = SiteFolder(tmp_path / "data")
    assert enrolled == {
        "data": str(site.root), "site": "press-1", "request": str(request),
        "fingerprint": enrolled["fingerprint"],
    }  # fmt: skip
    for path in (site.auth_key_file, site.site_key_file, site.tls_key_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    document = json.loads(request.read_text())
    assert sorted(document) == ["auth_key", "csr", "format", "sign_key", "site"]
    assert document["format"] == "genba-enrolment/1" and document["site"] == "press-1"
    assert "PRIVATE" not in request.read_text()
    parsed = EnrolmentRequest.read(request)  # what IT checks: keys parse, CSR self-signed, CN = name
    assert parsed.fingerprint() == enrolled["fingerprint"] and len(enrolled["fingerprint"]) == 24
    assert parsed.auth_key == site.auth_key_file.with_name("site-auth.pub").read_text().strip()
    assert keys.key_id(parsed.sign_public_key) == keys.key_id(
        keys.load_private_key(site.site_key_file).public_key()
    )
    tls = keys.load_ec_private_key(site.tls_key_file)
    assert keys.public_key_sha256(parsed.certificate_request.public_key()) == keys.public_key_sha256(  # type: ignore[arg-type]
        tls.public_key()
    )
    assert site.awaiting_kit and site.enrolment() == {**site.enrolment(), "site": "press-1"}  # type: ignore[dict-item]
    # Awaiting its kit: serving and joining refuse it with one line that says how to finish.
    for refuse in (site.require_initialized, lambda: SuperNode(JoinConfig(data=site.root))):
        with pytest.raises(UsageError) as caught:
            refuse()
        message = str(caught.value)
        assert (
            "awaiting its kit" in message
            and f"--data {site.root} --kit KIT" in message
            and "\n" not in message
        )
    with pytest.raises(UsageError, match="awaiting its kit .* not --trust"):
        init_site(site.root, site_name="press-1", trust=[_public_key(tmp_path)])


def _public_key(tmp_path: Path) -> Path:
    return keys.write_key_pair(keys.generate_signing_key(), tmp_path / "other-sign.pem")[1]


def test_enrolment_refuses_a_bad_name_a_used_folder_or_request_and_writes_nothing(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    def refused(root: Path, name: str, request: Path, error: type[Exception], words: str) -> None:
        before = sorted(tmp_path.rglob("*"))
        with pytest.raises(error, match=words):
            enrol_site(root, name, request)
        assert sorted(tmp_path.rglob("*")) == before

    refused(tmp_path / "a", "bad name!", tmp_path / "a.json", ConfigError, "site name 'bad name!'")
    refused(tmp_path / "a", "x" * 65, tmp_path / "a.json", ConfigError, "1-64 ASCII")
    init_site(tmp_path / "standalone", site_name="s", trust=[keypair[1]])
    refused(tmp_path / "standalone", "s", tmp_path / "s.json", OutputPathError, "already a site folder")
    enrol_site(tmp_path / "enrolled", "e", tmp_path / "e.json")
    refused(tmp_path / "enrolled", "e", tmp_path / "e2.json", OutputPathError, "already enrolled as 'e'")
    refused(tmp_path / "fresh", "f", tmp_path / "e.json", OutputPathError, "e.json already exists")
    refused(tmp_path / "fresh", "f", tmp_path / "nowhere" / "f.json", OutputPathError, "is not a folder")
    (tmp_path / "keyed" / "keys").mkdir(parents=True)
    (tmp_path / "keyed" / "keys" / "site-sign.pem").write_text("x")
    refused(tmp_path / "keyed", "k", tmp_path / "k.json", OutputPathError, "already holds keys")


def test_a_failed_enrolment_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(keys, "write_private_pem", broken)
    with pytest.raises(OSError):
        enrol_site(tmp_path / "data", "a", tmp_path / "a.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_kit_needs_a_folder_that_enrolled(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    kit = tmp_path / "kit"
    (kit / "trusted").mkdir(parents=True)
    (kit / "kit.toml").write_text('[site]\nname = "site-b"\n', encoding="utf-8")
    (kit / "trusted" / "it-sign.pem.pub").write_bytes(keypair[1].read_bytes())
    with pytest.raises(UsageError, match="holds no enrolment.*--enrol-request FILE"):
        init_site(tmp_path / "data", site_name=None, kit=kit)
    assert not (tmp_path / "data").exists()
    with pytest.raises(UsageError, match="not a site kit"):
        init_site(tmp_path / "data", site_name=None, kit=tmp_path)


def test_settings_report_every_problem_at_once() -> None:
    document = {
        "api": {"host": "0.0.0.0", "port": 70000},
        "gates": {"min_agreement": 2},
        "batching": {"colour": 1},
    }
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(document)
    problems = caught.value.problems
    assert any("loopback" in p for p in problems) and any("port" in p for p in problems)
    assert any("min_agreement" in p for p in problems) and any("batching.colour" in p for p in problems)


def test_tokens_map_to_roles_and_roles_to_permissions(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    site = init_site(tmp_path / "data", site_name="a", trust=[keypair[1]])
    registry = TokenRegistry.from_site(site)
    assert registry.role_for(f"Bearer {site.read_token('operator')}") == "operator"
    for header, words in (
        (None, "missing token"),
        ("Basic abc", "malformed"),
        ("Bearer nope", "invalid token"),
    ):
        with pytest.raises(AuthenticationError, match=words):
            registry.role_for(header)
    assert authorize("supervisor", "manage") == "supervisor"
    with pytest.raises(PermissionDeniedError, match="operator role may not manage"):
        authorize("operator", "manage")
    assert PERMISSIONS["predict"] >= {"integration"} and "integration" not in PERMISSIONS["label"]


def test_a_site_without_a_running_agent_says_how_to_start_it(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    site = init_site(tmp_path / "data", site_name="a", trust=[keypair[1]])
    with pytest.raises(AgentUnavailableError, match="genba agent serve"):
        site.read_address()
    with pytest.raises(UsageError, match="not a Genba site folder"):
        SiteFolder(tmp_path / "elsewhere").require_initialized()


def test_init_creates_a_private_site_signing_key(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    site = init_site(tmp_path / "data", site_name="a", trust=[keypair[1]])
    assert stat.S_IMODE(os.stat(site.site_key_file).st_mode) == 0o600
    assert site.site_public_key() is not None


def test_the_site_key_signs_only_this_sites_training_candidates(
    tmp_path: Path, keypair: tuple[Path, Path], bundle_versions: dict[int, Path], agent_harness: Any
) -> None:
    from edge_agent.library import ModelLibrary
    from genba.errors import SignatureError
    from genba.runtime.config import RuntimeConfig

    site = init_site(tmp_path / "data", site_name="line-2", trust=[keypair[1]])
    library = ModelLibrary(
        site.models_dir, site.trusted_keys(), RuntimeConfig(provider="cpu"), site.site_public_key(), "line-2"
    )

    plain = agent_harness.reversion(bundle_versions[1], site.site_key_file, tmp_path / "plain", 7)
    with pytest.raises(SignatureError, match="own key"):
        library.inspect(plain)  # site-signed, but not a training candidate of this site
    local = agent_harness.reversion(
        bundle_versions[1],
        site.site_key_file,
        tmp_path / "local",
        ModelVersion(1, 8),
        lineage_update={
            "parent": {"name": "x", "version": 1},
            "source": {"kind": "site-training", "site": "line-2"},
        },
    )
    assert library.inspect(local).version == ModelVersion(1, 8)
    foreign = agent_harness.reversion(
        bundle_versions[1],
        site.site_key_file,
        tmp_path / "foreign",
        9,
        lineage_update={
            "parent": {"name": "x", "version": 1},
            "source": {"kind": "site-training", "site": "line-9"},
        },
    )
    with pytest.raises(SignatureError, match="own key"):
        library.inspect(foreign)
    assert library.inspect(bundle_versions[2]).version == ModelVersion(2)  # IT's signature, as before


def test_a_version_is_allocated_by_its_signer_so_a_site_and_it_never_collide(
    tmp_path: Path, keypair: tuple[Path, Path], bundle_versions: dict[int, Path], agent_harness: Any
) -> None:
    """Site candidates are revisions (3.1), IT's bundles releases (3): each refused in the other's space."""
    from edge_agent.library import ModelLibrary
    from genba.errors import SignatureError
    from genba.runtime.config import RuntimeConfig

    site = init_site(tmp_path / "data", site_name="line-2", trust=[keypair[1]])
    library = ModelLibrary(
        site.models_dir, site.trusted_keys(), RuntimeConfig(provider="cpu"), site.site_public_key(), "line-2"
    )
    training = {"parent": {"name": "x", "version": 1}, "source": {"kind": "site-training", "site": "line-2"}}
    release_by_site = agent_harness.reversion(
        bundle_versions[1], site.site_key_file, tmp_path / "site-release", 2, lineage_update=training
    )
    with pytest.raises(SignatureError, match="release number, which only IT allocates"):
        library.inspect(release_by_site)  # would take IT's next number
    revision_by_it = agent_harness.reversion(
        bundle_versions[1], keypair[0], tmp_path / "it-rev", ModelVersion(1, 1)
    )
    with pytest.raises(SignatureError, match="site revision but this site did not sign it"):
        library.inspect(revision_by_it)  # would take the site's next candidate's number
    assert library.inspect(bundle_versions[2]).version == ModelVersion(2)
