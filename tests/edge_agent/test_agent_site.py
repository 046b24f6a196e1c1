"""Site folders, settings and tokens: what `genba agent init` creates and how it is checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import config_from_mapping, load_agent_config
from edge_agent.service.auth import PERMISSIONS, TokenRegistry, authorize
from edge_agent.site import ROLES, SiteFolder
from edge_agent.site_init import init_site
from genba.errors import (
    AgentUnavailableError,
    AuthenticationError,
    ConfigError,
    KeyFileError,
    OutputPathError,
    PermissionDeniedError,
    UsageError,
)


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


def test_init_from_a_kit_takes_its_name_and_trusted_keys(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    kit = tmp_path / "kit"
    (kit / "trusted").mkdir(parents=True)
    (kit / "kit.toml").write_text('[site]\nname = "site-b"\n', encoding="utf-8")
    (kit / "trusted" / "it-sign.pem.pub").write_bytes(keypair[1].read_bytes())
    site = init_site(tmp_path / "data", site_name=None, kit=kit)
    assert load_agent_config(site.config_file).site == "site-b" and len(site.trusted_keys()) == 1


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
        8,
        lineage_update={
            "parent": {"name": "x", "version": 1},
            "source": {"kind": "site-training", "site": "line-2"},
        },
    )
    assert library.inspect(local).version == 8
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
    assert library.inspect(bundle_versions[2]).version == 2  # IT's signature is accepted as before
