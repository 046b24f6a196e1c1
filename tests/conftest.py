"""Shared fixtures: tiny models built here (never downloaded), keys, and exported bundles."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from genba import env as _env  # noqa: F401  (telemetry off before anything heavy loads)


def _load_helpers(relative: str, name: str) -> ModuleType:
    """Load test helpers by path: putting tests/ on sys.path would let tests/export shadow export."""
    path = Path(__file__).parent / relative
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_models = _load_helpers("tiny_models.py", "genba_tests_tiny_models")


@pytest.fixture(scope="session")
def agent_harness() -> ModuleType:
    """Site settings, bundle versions and a real agent process (tests/edge_agent/harness.py)."""
    return _load_helpers("edge_agent/harness.py", "genba_tests_agent_harness")


@pytest.fixture(scope="session")
def byte_proxy() -> ModuleType:
    """A loopback TCP proxy that counts the bytes each way (tests/server/byte_proxy.py)."""
    return _load_helpers("server/byte_proxy.py", "genba_tests_byte_proxy")


@pytest.fixture(scope="session")
def enrolment() -> ModuleType:
    """An IT folder with sites enrolled by request, as a plant does it (tests/server/enrol.py)."""
    return _load_helpers("server/enrol.py", "genba_tests_enrol")


@pytest.fixture(scope="session")
def texts() -> tuple[str, ...]:
    return ("scratch on the housing surface", "no dent found, part ok", "oil on the bracket near the rim")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_bert(models_dir: Path) -> Path:
    return tiny_models.tiny_bert_classifier(models_dir / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_encoder(models_dir: Path) -> Path:
    return tiny_models.tiny_bert_encoder(models_dir / "tiny-encoder")


@pytest.fixture(scope="session")
def tiny_sentence(models_dir: Path) -> Path:
    """A sentence-transformers folder (tiny BERT, mean pooling, normalised), laid out like MiniLM."""
    return tiny_models.tiny_sentence_encoder(models_dir / "tiny-st")


@pytest.fixture(scope="session")
def tiny_model_builders() -> ModuleType:
    """tests/tiny_models.py, for a test that needs a model of its own (another seed, say)."""
    return tiny_models


@pytest.fixture(scope="session")
def tiny_vit(models_dir: Path) -> Path:
    return tiny_models.tiny_vit_classifier(models_dir / "tiny-vit")


@pytest.fixture(scope="session")
def tiny_fnet(models_dir: Path) -> Path:
    return tiny_models.tiny_fnet_classifier(models_dir / "tiny-fnet")


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from genba import keys

    return keys.write_key_pair(keys.generate_signing_key(), tmp_path_factory.mktemp("keys") / "it-sign.pem")


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from genba import keys

    return keys.write_key_pair(keys.generate_signing_key(), tmp_path_factory.mktemp("keys2") / "other.pem")


@pytest.fixture(scope="session")
def text_eval_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "eval.jsonl"
    lines = [
        '{"text": "scratch on the housing", "label": "scratch"}',
        '{"text": "dent near the flange", "label": "dent"}',
        '{"text": "part ok no issues found", "label": "ok"}',
        '{"text": "left rim dent", "label": "dent"}',
        '{"text": "surface scratch on the line", "label": "scratch", "group": "line-1"}',
        '{"text": "good part", "label": "ok"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def bert_bundle(
    tiny_bert: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A signed two-graph bundle of the tiny BERT classifier (fp32), exported once per session."""
    from export import ExportConfig, export_model

    out = tmp_path_factory.mktemp("bundles") / "tiny-bert-v1"
    config = ExportConfig(
        model_dir=tiny_bert, task="text-classification", out=out, precision="fp32", signing_key=keypair[0]
    )
    return export_model(config).bundle


@pytest.fixture(scope="session")
def vit_bundle(tiny_vit: Path, keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed bundle of the tiny ViT image classifier (fp32), exported once per session."""
    from export import ExportConfig, export_model

    out = tmp_path_factory.mktemp("bundles") / "tiny-vit"
    config = ExportConfig(
        model_dir=tiny_vit, task="image-classification", out=out, precision="fp32", signing_key=keypair[0]
    )
    return export_model(config).bundle


@pytest.fixture(scope="session")
def bundle_versions(
    bert_bundle: Path,
    keypair: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    agent_harness: Any,
) -> dict[int, Path]:
    """The tiny BERT bundle as versions 1, 2 and 3 of one model, all signed by IT's key."""
    root = tmp_path_factory.mktemp("versions")
    return {v: agent_harness.reversion(bert_bundle, keypair[0], root / f"v{v}", v) for v in (1, 2, 3)}


@pytest.fixture
def bundle_copy(bert_bundle: Path, tmp_path: Path) -> Path:
    """A private copy a test may tamper with."""
    return Path(shutil.copytree(bert_bundle, tmp_path / "bundle"))
