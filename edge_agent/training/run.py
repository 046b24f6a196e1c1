"""Train a candidate at the site: production model + training labels → a signed head-swapped bundle.

Runs in its own process while the agent serves: the labels and slots are read through a
read-only store connection, the only writes are embeddings to the cache, and the result is
a bundle folder at ``out`` that a supervisor installs as the candidate. Every check on the
labels and the model happens before any embedding, cache write or file.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import time
from pathlib import Path
from typing import Any

from edge_agent.answers import decode_payload
from edge_agent.config import AgentConfig, load_agent_config
from edge_agent.library import ModelLibrary
from edge_agent.site import SiteFolder
from edge_agent.store import LabelledInput, ModelRow, SiteStore
from edge_agent.training.auto import AutoChoice
from edge_agent.training.candidate import CandidateSource, head_file, parent_reference, write_head_candidate
from edge_agent.training.data import TrainingSet, read_training_labels, training_set
from edge_agent.training.embeddings import DEFAULT_BATCH_SIZE, Embedded, backbone_key, cached_embeddings
from edge_agent.training.errors import NoProductionModelError, TrainingModeError, UnsupportedSourceError
from edge_agent.training.head import HeadTrainingConfig, fit_head
from edge_agent.training_modes import TRAINING_MODES
from export.graphs import HeadWeights
from genba import keys
from genba.bundle import MANIFEST_NAME, Manifest, VerifiedBundle, verify_directory
from genba.errors import IntegrityError, OutputPathError
from genba.runtime.config import ProviderPolicy
from genba.runtime.model import BundleModel
from genba.versions import ModelVersion, next_site_revision

MODES = TRAINING_MODES
_PROBE_SIZE = 16


def train_candidate(
    data_dir: Path,
    *,
    mode: str,
    out: Path,
    signing_key: Path | None = None,
    seed: int = 0,
    provider: ProviderPolicy | None = None,
    head_config: HeadTrainingConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    unlabelled: str = "off",
) -> dict[str, Any]:
    """Train a candidate from the site's production model and training labels; write it at ``out``.

    ``head``: a new head fitted on cached backbone embeddings, written as a head swap.
    ``last-k``: the top blocks of the source torch model fine-tuned with the head, then
    re-exported with the parent's precision through the export gates.
    ``contrastive``: the top blocks taught the classes from pairs of training labels (SetFit),
    a head fitted on the tuned embeddings, then re-exported as ``last-k`` is.
    ``unlabelled`` (``edge_agent.training.adapt``): ``adapt`` adapts the encoder to the site's
    unlabelled reports before an encoder mode trains; ``pseudo`` adds production's sure answers on
    them to head mode's labels; ``off`` leaves them out.
    ``signing_key`` defaults to the site's own key (``DATA/keys/site-sign.pem``); ``provider``
    (auto, gpu, cpu) overrides the site's runtime setting. Returns a JSON-able summary: the
    bundle, its version, its parent and the training report.
    """
    started = time.perf_counter()
    if mode not in MODES:
        raise TrainingModeError(mode)
    check_unlabelled(mode, unlabelled)
    site = SiteFolder(Path(data_dir)).require_initialized()
    config = load_agent_config(site.config_file)
    runtime = dataclasses.replace(
        config.runtime, provider=provider or config.runtime.provider, spin_wait=False
    )
    out = Path(out)
    if out.exists():
        raise OutputPathError(f"{out} already exists; choose another --out or remove it")
    key_path = signing_key or site.site_key_file
    private_key = keys.load_private_key(key_path)
    production, items = read_site(site)
    version = candidate_version(site, production)
    library = ModelLibrary(site.models_dir, site.trusted_keys(), runtime, site.site_public_key(), config.site)
    parent = verified_parent(site, library, production)
    prior = _parent_head(parent.path / head_file(parent.manifest))  # one-graph models refused here
    data = training_set(items, parent.manifest.labels or (), parent.manifest.input.kind)
    model = BundleModel(parent, runtime)
    extra: dict[str, Any] = {}
    texts = _unlabelled_texts(site, config, data, unlabelled)
    embedded: Embedded | None = None
    if mode == "auto":
        embedded = _embedded(site, parent, model, data, batch_size)
        choice = _choose_mode(site, config, parent, model, data, prior, seed, head_config, embedded, texts)
        mode, extra = choice.mode, {"auto": choice.report}
    origin = CandidateSource(site=config.site, labels=len(data), seed=seed, mode=mode)
    if mode == "head":
        if embedded is None:  # auto has them already
            embedded = _embedded(site, parent, model, data, batch_size)
        if unlabelled == "pseudo":
            fit, used = _fit_with_pseudo_labels(
                model, embedded, data, texts, prior, config, seed, head_config
            )
            origin, extra = dataclasses.replace(origin, unlabelled=used), {**extra, "unlabelled": used}
        else:
            fit = fit_head(
                embedded.vectors,
                data.label_indices,
                len(data.labels),
                seed=seed,
                config=head_config,
                prior=prior,
            )
        report = _report(
            data,
            mode,
            model.provider,
            seed,
            variant=model.variant,
            head=fit.report,
            **_embedding_report(embedded),
            **extra,
        )
        manifest = write_head_candidate(
            parent,
            fit.weights,
            out,
            private_key,
            source=origin,
            report=report,
            version=version,
            probe=embedded.vectors[:_PROBE_SIZE],
        )
    else:
        manifest, report = _train_encoder(
            mode, site, config, parent, model, data, prior, out, key_path, origin, seed, version, extra, texts
        )
    report["seconds"] = round(time.perf_counter() - started, 3)
    return {
        "bundle": str(out),
        "name": manifest.model.name,
        **manifest.version.json_fields(),
        "manifest_sha256": hashlib.sha256((out / MANIFEST_NAME).read_bytes()).hexdigest(),
        "signer_key_id": manifest.signer.key_id if manifest.signer else None,
        "parent": manifest.lineage.parent.to_json() if manifest.lineage.parent else None,
        "report": report,
    }


def _train_encoder(
    mode: str,
    site: SiteFolder,
    config: AgentConfig,
    parent: VerifiedBundle,
    model: BundleModel,
    data: TrainingSet,
    prior: HeadWeights | None,
    out: Path,
    key_path: Path,
    origin: CandidateSource,
    seed: int,
    version: ModelVersion,
    extra: dict[str, Any],
    unlabelled: list[str] | None,
) -> tuple[Manifest, dict[str, Any]]:
    """``last-k`` or ``contrastive``: fine-tune the source model's top blocks, re-export, sign."""
    from edge_agent.training.adapt import adapt_encoder
    from edge_agent.training.contrastive import fine_tune_contrastive, require_pairs
    from edge_agent.training.last_k import fine_tune, training_device
    from edge_agent.training.reexport import write_last_k_candidate
    from edge_agent.training.source import load_source

    if prior is None or data.items[0].kind != "text":
        raise UnsupportedSourceError(parent.path, f"{mode} training needs a text model with a head graph")
    if mode == "contrastive":  # refused before the source model loads: nothing is written
        require_pairs(data.label_indices)
    texts = [str(decode_payload(item.kind, item.payload)) for item in data.items]
    device = training_device(model.config.provider)
    source = load_source(site, config.training, parent, model, texts[: _PROBE_SIZE * 2])
    if unlabelled is not None:  # --unlabelled adapt: the encoder learns the site's language first
        encode = model.preprocessor.encode
        adapted = adapt_encoder(source, encode, unlabelled, config.training, seed=seed, device=device)
        origin, extra = dataclasses.replace(origin, unlabelled=adapted), {**extra, "unlabelled": adapted}
    tune = fine_tune_contrastive if mode == "contrastive" else fine_tune
    tuned = tune(
        source,
        model.preprocessor.encode,
        texts,
        data.label_indices,
        prior,
        config.training,
        seed=seed,
        device=device,
    )
    report = _report(
        data,
        mode,
        model.provider,
        seed,
        variant=model.variant,
        **{mode.replace("-", "_"): tuned.report},
        source={
            "path": str(source.path),
            "site_weights": bool(source.site_weights),
            "mean_cosine": source.mean_cosine,
        },
        **extra,
    )
    manifest = write_last_k_candidate(
        site, parent, source, tuned, out, key_path, texts=texts, origin=origin, version=version,
        report=report,
        threads=model.config.intra_op_threads,
    )  # fmt: skip
    return manifest, report


def check_unlabelled(mode: str, unlabelled: str) -> None:
    """What ``--unlabelled`` goes with: adapt changes an encoder, pseudo adds labels to a head."""
    from edge_agent.training.errors import UnlabelledOptionError
    from edge_agent.training_modes import UNLABELLED

    if unlabelled not in UNLABELLED:
        raise UnlabelledOptionError(
            f"--unlabelled must be one of {', '.join(UNLABELLED)}, not {unlabelled!r}"
        )
    if unlabelled == "adapt" and mode == "head":
        raise UnlabelledOptionError(
            "--unlabelled adapt adapts the encoder, which head mode keeps: use it with --mode last-k, "
            "contrastive or auto"
        )
    if unlabelled == "pseudo" and mode != "head":
        raise UnlabelledOptionError("--unlabelled pseudo adds labels to head mode: use it with --mode head")


def _unlabelled_texts(
    site: SiteFolder, config: AgentConfig, data: TrainingSet, unlabelled: str
) -> list[str] | None:
    """The unlabelled reports ``adapt`` or ``pseudo`` learns from (None when ``off``); none is an error."""
    if unlabelled == "off":
        return None
    from edge_agent.training.adapt import unlabelled_texts
    from edge_agent.training.errors import UnlabelledOptionError

    if data.items[0].kind != "text":
        raise UnlabelledOptionError(
            f"--unlabelled {unlabelled} learns from text reports; this model reads images"
        )
    with SiteStore.read_only(site.store_file) as store:
        texts = unlabelled_texts(
            store, config.site, config.store.holdout_fraction, config.training.adapt_max_texts
        )
    if not texts:
        raise UnlabelledOptionError(
            f"--unlabelled {unlabelled}: the store holds no unlabelled reports in the training split yet; "
            "serve some first, or train with --unlabelled off"
        )
    return texts


def _fit_with_pseudo_labels(
    model: BundleModel,
    embedded: Embedded,
    data: TrainingSet,
    texts: list[str] | None,
    prior: HeadWeights | None,
    config: AgentConfig,
    seed: int,
    head_config: HeadTrainingConfig | None,
) -> tuple[Any, dict[str, Any]]:
    """Head mode with production's answers on the unlabelled reports at or above the threshold as
    half-weighted labels (``edge_agent.training.pseudo``); the fit and what was used."""
    import numpy as np

    from edge_agent.training.pseudo import (
        DEFAULT_PSEUDO_WEIGHT,
        confident_pseudo_labels,
        fit_head_with_pseudo_labels,
    )

    started = time.perf_counter()
    assert texts is not None
    scores, vectors = [], []
    for start in range(0, len(texts), 64):
        probabilities, embedding, _ = model.predict_arrays(texts[start : start + 64])
        assert probabilities is not None and embedding is not None  # a head-swappable bundle answers both
        scores.append(probabilities)
        vectors.append(embedding)
    threshold = config.training.pseudo_threshold
    rows, pseudo_labels = confident_pseudo_labels(np.concatenate(scores), threshold)
    fit = fit_head_with_pseudo_labels(
        embedded.vectors, data.label_indices, np.concatenate(vectors)[rows], pseudo_labels, len(data.labels),
        seed=seed, config=head_config, prior=prior,
    )  # fmt: skip
    used = {
        "method": "pseudo",
        "texts": len(texts),
        "characters": int(sum(len(t) for t in texts)),
        "pseudo_labels": int(len(rows)),
        "threshold": threshold,
        "weight": DEFAULT_PSEUDO_WEIGHT,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return fit, used


def _embedded(
    site: SiteFolder, parent: VerifiedBundle, model: BundleModel, data: TrainingSet, batch_size: int
) -> Embedded:
    """Production's embeddings of the training items, from the site's cache where it has them."""
    with SiteStore(site.store_file) as store:
        store.drop_pruned_embeddings()
        return cached_embeddings(
            store, model, backbone_key(parent.manifest, model.variant), data.items, batch_size=batch_size
        )


def _choose_mode(
    site: SiteFolder,
    config: AgentConfig,
    parent: VerifiedBundle,
    model: BundleModel,
    data: TrainingSet,
    prior: HeadWeights | None,
    seed: int,
    head_config: HeadTrainingConfig | None,
    embedded: Embedded,
    unlabelled: list[str] | None = None,
) -> AutoChoice:
    """``auto``: each mode this model allows, cross-validated on the labels (``edge_agent.training.auto``)."""
    from edge_agent.training.adapt import adapt_encoder
    from edge_agent.training.auto import AutoInputs, choose_mode
    from edge_agent.training.errors import TrainingError
    from edge_agent.training.last_k import training_device
    from edge_agent.training.source import load_source

    if prior is None:
        raise UnsupportedSourceError(parent.path, "training needs a model with a head graph")
    inputs = AutoInputs(targets=data.label_indices, parent=prior, vectors=embedded.vectors)
    if data.items[0].kind == "text":
        texts = [str(decode_payload(item.kind, item.payload)) for item in data.items]
        probe = texts[: _PROBE_SIZE * 2]
        device = training_device(model.config.provider)

        try:  # the source model is checked once here
            checked = load_source(site, config.training, parent, model, probe)
        except TrainingError as error:
            inputs = dataclasses.replace(inputs, encoder_unavailable=str(error))
        else:

            @functools.cache
            def base() -> Any:  # adapted once, under --unlabelled adapt, when a trial first asks
                if unlabelled is not None:
                    encode = model.preprocessor.encode
                    adapt_encoder(checked, encode, unlabelled, config.training, seed=seed, device=device)
                return checked

            inputs = dataclasses.replace(
                inputs,
                texts=texts,
                new_source=lambda: copy.deepcopy(base()),  # a fresh copy per fold of every trial
                encode=model.preprocessor.encode,
                device=device,
            )
    return choose_mode(inputs, config.training, seed, head_config)


def _parent_head(path: Path) -> HeadWeights | None:
    """The parent's head weights: site training refines them rather than starting over."""
    import onnx

    from export.graphs import head_weights

    return head_weights(onnx.load(str(path)))


def read_site(site: SiteFolder) -> tuple[ModelRow, list[LabelledInput]]:
    """The production model's row and the training labels, in one read-only visit."""
    with SiteStore.read_only(site.store_file) as store:
        slots = store.slots()
        if slots.production is None:
            raise NoProductionModelError()
        return store.get_model(slots.production.model_id), read_training_labels(store)


def candidate_version(site: SiteFolder, production: ModelRow) -> ModelVersion:
    """The next revision of production's release that this site has not used (``genba.versions``).

    Every model the site ever installed counts, discarded and superseded ones too, so no two
    candidates of this site share a version; the agent's store refuses a duplicate regardless.
    """
    with SiteStore.read_only(site.store_file) as store:
        installed = [row.version for row in store.list_models() if row.name == production.name]
    return next_site_revision(production.version, installed)


def verified_parent(site: SiteFolder, library: ModelLibrary, row: ModelRow) -> VerifiedBundle:
    """The installed copy, verified as the agent verifies it, and the very one the store recorded."""
    bundle = library.check_signer(verify_directory(site.models_dir / row.path, library.trusted))
    if parent_reference(bundle)["manifest_sha256"] != row.manifest_sha256:
        raise IntegrityError(
            f"the installed copy of {row.label} is not the bundle the site store recorded; "
            "reinstall the model"
        )
    return bundle


def _embedding_report(embedded: Embedded) -> dict[str, Any]:
    return {
        "embedded_new": embedded.new,
        "embedded_cached": embedded.cached,
        "embed_seconds": round(embedded.seconds, 3),
    }


def _report(data: TrainingSet, mode: str, provider: str, seed: int, **details: Any) -> dict[str, Any]:
    counts = data.class_counts()
    return {
        "mode": mode,
        "labels": len(data),
        "class_counts": counts,
        "classes_without_labels": [label for label, count in counts.items() if count == 0],
        "provider": provider,
        "seed": seed,
        **details,
    }
