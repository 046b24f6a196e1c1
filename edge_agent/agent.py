"""The site agent: serves the production model, keeps everything in the site store, runs the rollout.

This is the library the local API, the CLI and tests drive; it knows no HTTP.
Threads: a micro-batching worker answers requests (production, plus the pilot
candidate's suggestion) and commits them before anyone is answered; a shadow
worker runs a shadow candidate on the same inputs afterwards, off the answer path;
a gatekeeper evaluates the candidate's gates and advances it when they pass.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.answers import Answer, Item, ModelAnswer, model_answers
from edge_agent.certificates import site_certificates
from edge_agent.config import AgentConfig, load_agent_config
from edge_agent.drift_monitor import DriftMonitor
from edge_agent.explanations import Explanations
from edge_agent.jobs import TrainingJobs
from edge_agent.labelling import RankingVectors
from edge_agent.library import LoadedModel, ModelLibrary
from edge_agent.rollout import CANDIDATE_STAGES, GateReport, evaluate_gates
from edge_agent.serving import MicroBatcher
from edge_agent.site import SiteFolder
from edge_agent.slots import Active, Slots
from edge_agent.split import SplitRule
from edge_agent.store import LabelRow, PairedBatch, QueueItem, SiteStore
from genba.bundle import Manifest
from genba.errors import AgentUnavailableError, GenbaError, NoModelError, UsageError
from genba.runtime.model import Prepared
from genba.versions import ModelVersion

#: The audit sample's draws (``store.audit_share`` of served inputs, whatever production answered):
#: the OS's randomness, not a seedable generator a caller could predict or steer.
_AUDIT_DRAW = random.SystemRandom()

log = logging.getLogger(__name__)

#: A clock this far behind the store's newest time is listed among the agent's problems.
CLOCK_BEHIND_WARNING_S = 1.0

#: A batch for the shadow worker: the candidate, production's id and answers, input ids, inputs, and
#: how long each caller waited besides production's model time (queueing, batching, the pilot).
_ShadowJob = tuple[LoadedModel, tuple[int, list[ModelAnswer]], list[int], list[Item], list[float]]


class Agent:
    def __init__(
        self,
        site: SiteFolder,
        config: AgentConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` stamps what is stored and dates certificates; ``monotonic`` measures every
        interval (uptime, the gatekeeper's upkeep, how fresh a gate report is), so a clock set
        back or forward changes no interval."""
        self.site = site.require_initialized()
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.store = SiteStore(
            site.store_file,
            clock=clock,
            holdout_reuse_limit=config.store.holdout_reuse_limit,
            durability=config.store.durability,
        )
        self.split_rule = SplitRule(config.site, config.store.holdout_fraction)
        self.library = ModelLibrary(
            site.models_dir, site.trusted_keys(), config.runtime, site.site_public_key(), config.site
        )
        self.slots = Slots(self.store, self.library, gate_report=self.gate_report, on_change=self.wake)
        self.started_at = clock()
        self._started = monotonic()
        self._serving = False
        overlap = _overlaps(config)
        self._batcher: MicroBatcher[Item, Answer] = MicroBatcher(
            self._answer_batch, config.batching, prepare=self._prepare_batch if overlap else None
        )
        self.worker_problems: list[str] = []
        self._shadow: queue.Queue[_ShadowJob] = queue.Queue(maxsize=config.shadow_queue)
        self.shadow_dropped = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Each active model's answer per held-out input, kept: a new label runs only its input.
        self._held_out_answers: dict[int, dict[int, str | None]] = {}
        self._accuracy_lock = threading.Lock()
        #: The last gate report, with the slots it judged and when: ``recent_gate_report``.
        self._last_gates: tuple[tuple[Any, ...], float, GateReport | None] | None = None
        self._gates_lock = threading.Lock()
        self.training = TrainingJobs(self.site, self.store, self._install)
        self.explanations = Explanations()
        #: Production's vectors per served input, so ranking the queue need not run the model again.
        self.ranking_vectors = RankingVectors()
        self.drift = DriftMonitor(config.drift)

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, site: SiteFolder, config: AgentConfig | None = None, *, serving: bool = True) -> Agent:
        """An agent with its slots loaded; ``serving=False`` (the CLI's offline commands) starts no
        worker threads, prunes nothing and logs no start: it is only there to change or read slots."""
        agent = cls(site, config or load_agent_config(site.config_file))
        try:
            agent.start(serving=serving)
        except BaseException:
            agent.store.close()
            raise
        return agent

    @property
    def active(self) -> Active:
        """The models in the slots now (one reference: read it once per decision)."""
        return self.slots.active

    @property
    def load_problems(self) -> list[str]:
        return self.slots.load_problems

    def start(self, serving: bool = True) -> None:
        self.library.clean_staging()
        self.slots.load()
        if not serving:
            return
        self._serving = True
        self.store.prune(keep_days=self.config.store.retention_days)
        self.store.append_audit("agent_start", "system", self.describe_active())
        self._batcher.start()
        for target, name in ((self._shadow_loop, "genba-shadow"), (self._gatekeeper_loop, "genba-gates")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        self.training.stop()
        self._batcher.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- answering

    def predict(self, items: Sequence[Item]) -> list[Answer]:
        if not self._serving:
            raise AgentUnavailableError(
                "this agent was opened to change or read slots, not to serve; "
                "start it with 'genba agent serve'"
            )
        futures = self._batcher.submit_many(list(items))
        return [future.result() for future in futures]

    async def apredict(self, items: Sequence[Item]) -> list[Answer]:
        return await self._batcher.run_many(list(items))

    async def apredict_one(self, item: Item) -> Answer:
        return await self._batcher.run(item)

    def expected_input_kind(self) -> str:
        production = self.active.production
        if production is None:
            raise self.no_model_error()
        return production.identity.manifest.input.kind

    def no_model_error(self) -> NoModelError:
        if self.load_problems:
            return NoModelError(f"no model is serving: {self.load_problems[-1]}")
        return NoModelError("no production model installed; install one with 'genba agent install BUNDLE'")

    def _prepare_batch(self, items: list[Item]) -> tuple[int, Prepared] | None:
        """Tokenize for the production model while the batcher's other thread runs the last batch."""
        production = self.active.production
        if production is None:
            return None
        return production.model_id, production.model.prepare([item.value for item in items])

    def _answer_batch(self, items: list[Item], prepared: tuple[int, Prepared] | None = None) -> list[Answer]:
        active = self.active
        if active.production is None:
            raise self.no_model_error()
        values = [item.value for item in items]
        # Inputs prepared for a model that was swapped out meanwhile are prepared again.
        ready = prepared[1] if prepared is not None and prepared[0] == active.production.model_id else None
        served, probabilities, embedding = self._run_arrays(active.production, values, "production", ready)
        pilot = self._pilot_answers(active, values) if active.stage == "pilot" else None
        callers = _caller_latencies(items, served)
        predictions = []
        for row, answer in enumerate(served):
            records = [answer.record(active.production.model_id, served=True, caller_latency_ms=callers[row])]
            if pilot is not None and active.candidate is not None:
                records.append(pilot[row].record(active.candidate.model_id, True, callers[row]))
            predictions.append(records)
        audited = [_AUDIT_DRAW.random() < self.config.store.audit_share for _ in items]
        stored = self.store.record_served([item.record() for item in items], predictions, audited)
        served_ids = [ids[0] for _, ids in stored]
        self._record_drift_features(active.production, served_ids, probabilities, embedding)
        input_ids = [input_id for input_id, _ in stored]
        if probabilities is not None and embedding is not None:
            self.ranking_vectors.put(active.production.model_id, input_ids, probabilities, embedding)
        production_id = active.production.model_id
        if pilot is not None and active.candidate is not None:
            paired = self._paired(active.candidate, production_id, "pilot", input_ids, items, pilot, served)
            self.store.record_paired(paired)
        if active.stage == "shadow" and active.candidate is not None:
            waited = [caller - answer.latency_ms for caller, answer in zip(callers, served, strict=True)]
            self._offer_shadow(active.candidate, (production_id, served), input_ids, items, waited)
        self._wake.set()
        return [
            Answer(input_id, ids[0], served[row], pilot[row] if pilot else None)
            for row, (input_id, ids) in enumerate(stored)
        ]

    @classmethod
    def _run_model(cls, loaded: LoadedModel | None, values: list[Any], stage: str) -> list[ModelAnswer]:
        return cls._run_arrays(loaded, values, stage)[0]

    @staticmethod
    def _run_arrays(
        loaded: LoadedModel | None, values: list[Any], stage: str, prepared: Prepared | None = None
    ) -> tuple[list[ModelAnswer], np.ndarray | None, np.ndarray | None]:
        """The answers, with the probabilities and embedding they came from."""
        assert loaded is not None
        model = loaded.model
        arrays = model.predict_arrays(values) if prepared is None else model.predict_arrays(values, prepared)
        probabilities, embedding, latency_ms = arrays
        summary = {
            "name": loaded.identity.name,
            **loaded.identity.version.json_fields(),
            "variant": loaded.model.variant,  # cpu, cuda or default: which of the bundle's graphs answered
        }
        answers = model_answers(
            probabilities,
            loaded.model.labels,
            len(values),
            model=summary,
            stage=stage,
            latency_ms=latency_ms,
            provider=loaded.model.provider,
        )
        return answers, probabilities, embedding

    def _record_drift_features(
        self,
        production: LoadedModel,
        prediction_ids: list[int],
        probabilities: np.ndarray | None,
        embedding: np.ndarray | None,
    ) -> None:
        """After the answers are stored; a failure here costs drift monitoring, never an answer."""
        try:
            self.drift.record(self.store, production.model_id, prediction_ids, probabilities, embedding)
        except Exception as exc:  # (the store being busy included)
            self._report_worker_problem("drift features", production, exc)

    def _pilot_answers(self, active: Active, values: list[Any]) -> list[ModelAnswer] | None:
        """The pilot's suggestions; a failing candidate costs its suggestion, never production's answer."""
        try:
            return self._run_model(active.candidate, values, "pilot")
        except Exception as exc:  # (any failure of the candidate, ORT's included)
            self._report_worker_problem("pilot", active.candidate, exc)
            return None

    def _report_worker_problem(self, where: str, model: LoadedModel | None, exc: BaseException) -> None:
        # The type only: a message could quote the operator's input, which stays in the store.
        problem = f"{where} answers of model {model.model_id if model else '?'} failed ({type(exc).__name__})"
        if problem not in self.worker_problems:
            self.worker_problems.append(problem)
            log.error(problem)

    def _offer_shadow(
        self, candidate: LoadedModel, production: tuple[int, list[ModelAnswer]], input_ids: list[int],
        items: list[Item], waited: list[float],
    ) -> None:  # fmt: skip
        try:
            self._shadow.put_nowait((candidate, production, input_ids, items, waited))
        except queue.Full:
            self.shadow_dropped += len(items)  # shadow answers are a sample; serving never waits for them

    def _shadow_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._shadow.get(timeout=0.5)
            except queue.Empty:
                continue
            candidate, (production_id, served), input_ids, items, waited = job
            if self.active.candidate is not candidate or self.active.stage != "shadow":
                continue
            try:
                answers = self._run_model(candidate, [i.value for i in items], "shadow")
                paired = self._paired(candidate, production_id, "shadow", input_ids, items, answers, served)
                # What a caller would have seen had the candidate answered in production's place.
                records = [
                    a.record(candidate.model_id, served=False, caller_latency_ms=wait + a.latency_ms)
                    for a, wait in zip(answers, waited, strict=True)
                ]
                self.store.add_predictions(input_ids, records, paired)  # one transaction: no answer unpaired
            except Exception as exc:  # (the worker must outlive any one failure)
                self._report_worker_problem("shadow", candidate, exc)
            self._wake.set()

    def _paired(
        self, candidate: LoadedModel, production_id: int, stage: str, input_ids: list[int], items: list[Item],
        ours: list[ModelAnswer], theirs: list[ModelAnswer],
    ) -> PairedBatch:  # fmt: skip
        """The gates' paired sample: held-out inputs both answered, disagreements drawn for labels."""
        from edge_agent.pairing import pair_answers

        share = self.config.gates.disagreement_share
        pairs = pair_answers(self.split_rule, share, input_ids, items, ours, theirs)
        return PairedBatch(candidate.model_id, production_id, stage, tuple(pairs))

    # ---------------------------------------------------------------- labels and queue

    def label(
        self,
        input_id: int,
        label: str,
        *,
        actor: str,
        operator_seconds: float | None = None,
        groups: dict[str, str] | None = None,
    ) -> LabelRow:
        """Record an operator's label. Whether it trains or judges is the site's split rule's call, by
        the input's content (``edge_agent.split``): no caller chooses it."""
        known = self.known_labels()
        if known and label not in known:
            raise UsageError(f"unknown label {label!r}; expected one of {', '.join(sorted(known))}")
        row = self.store.add_label(
            input_id,
            label,
            actor=actor,
            split=self.split_rule,
            operator_seconds=operator_seconds,
            groups=groups,
        )
        with self._gates_lock:
            self._last_gates = None  # a label can change what the gates say
        self._wake.set()
        return row

    def explain(self, input_id: int) -> dict[str, Any]:
        """Why the production model answers ``input_id`` as it does (occlusion; cached)."""
        return self.explanations.explain(self.store, self.active.production, input_id)

    def queue(self, limit: int = 20) -> list[QueueItem]:
        from edge_agent.labelling import labelling_queue

        production = self.active.production
        focus = self.drift.focus(self.store, production.model_id if production else None)
        candidate, sampled = self.active.candidate, self.config.gates.evidence == "disagreement"
        judged = candidate.model_id if candidate is not None and sampled else None
        return labelling_queue(self.store, production, limit, focus, judged, self.ranking_vectors)

    def _install(self, source: Path, *, actor: str) -> dict[str, Any]:
        return self.install(source, actor=actor)  # looked up per call: whatever install is then

    def check_drift(self) -> list[dict[str, Any]]:
        """Test the production model's full windows not tested yet (the gatekeeper does, every tick)."""
        return self.drift.check_pending(self.store, self.active.production)

    def train_on_drift(self) -> None:
        """With ``[drift] train_on_drift``: start training once a drift alarm's labels are in."""
        self.drift.train_if_labelled(
            self.store, self.active.production, lambda mode: self.training.start(mode=mode, actor="drift")
        )

    def drift_status(self) -> dict[str, Any]:
        return self.drift.status(self.store, self.active.production)

    def rebaseline_drift(self, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Accept the current traffic as normal: production's next windows become its drift reference."""
        return self.drift.rebaseline(self.store, self.active.production, actor=actor, reason=reason)

    def group_figures(self, key: str | None = None) -> dict[str, Any]:
        from edge_agent.groups import production_by_group

        return production_by_group(self.store, self.config.groups, key)

    def known_labels(self) -> set[str]:
        active = self.active
        return {label for m in (active.production, active.candidate) if m for label in m.model.labels}

    # ---------------------------------------------------------------- gates

    def gate_report(self) -> GateReport | None:
        slots = self.store.slots()
        if (
            slots.candidate is None
            or slots.production is None
            or slots.candidate.stage not in CANDIDATE_STAGES
        ):
            return None
        report = evaluate_gates(
            self.store,
            self.config.gates,
            slots.candidate,
            slots.production,
            self.held_out_answers,
            self.config.groups,
        )
        with self._gates_lock:
            self._last_gates = (_slots_key(slots), self.monotonic(), report)
        return report

    def recent_gate_report(self) -> GateReport | None:
        """The gates as last evaluated, if for the same slots, since the last label and less than
        ``gates.evaluate_every_s`` ago (the gatekeeper's own pace); otherwise evaluated now. Status is
        polled by every operator's app: it never evaluates the gates more often than the gatekeeper."""
        slots = self.store.slots()
        with self._gates_lock:
            last = self._last_gates
        fresh = last is not None and self.monotonic() - last[1] < self.config.gates.evaluate_every_s
        if last is not None and fresh and last[0] == _slots_key(slots):
            return last[2]
        return self.gate_report()

    def accuracy_of(self, model_id: int, held_out: Sequence[tuple[int, str]]) -> float | None:
        """Accuracy on the held-out labels ``(input_id, label)``."""
        answers = self.held_out_answers(model_id, held_out)
        if not answers:
            return None
        labels = dict(held_out)
        return sum(answers[i] == labels[i] for i in answers) / len(answers)

    def held_out_answers(
        self, model_id: int, held_out: Sequence[tuple[int, str]]
    ) -> dict[int, str | None] | None:
        """The model's answer on each held-out input; an input is read and run once per model."""
        active = self.active
        loaded = next(
            (m for m in (active.production, active.candidate) if m and m.model_id == model_id), None
        )
        if loaded is None or not held_out or not loaded.model.is_classifier:
            return None
        wanted = [input_id for input_id, _ in held_out]
        with self._accuracy_lock:
            for stale in set(self._held_out_answers) - {
                m.model_id for m in (active.production, active.candidate) if m
            }:
                del self._held_out_answers[stale]
            known = self._held_out_answers.setdefault(model_id, {})
            missing = [input_id for input_id in wanted if input_id not in known]
        from edge_agent.answers import decode_payload

        for start in range(0, len(missing), 64):  # read and decoded a chunk at a time: images can be large
            chunk = self.store.get_inputs(missing[start : start + 64])
            ran = self._run_model(loaded, [decode_payload(i.kind, i.payload) for i in chunk], "evaluation")
            with self._accuracy_lock:
                known.update({item.id: a.label for a, item in zip(ran, chunk, strict=True)})
        with self._accuracy_lock:
            answers = {input_id: known[input_id] for input_id in wanted if input_id in known}
        return answers

    def _gatekeeper_loop(self) -> None:
        last_kpis: float | None = None
        last_prune = self.monotonic()  # start() has just pruned
        while not self._stopping.is_set():
            self._wake.wait(timeout=self.config.gates.evaluate_every_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                if self.config.gates.auto_advance:
                    self.slots.advance_if_gates_pass()
                self.check_drift()
                self.train_on_drift()
                if last_kpis is None or self.monotonic() - last_kpis > 60.0:
                    self.store.refresh_kpi_daily()
                    last_kpis = self.monotonic()
                if self.monotonic() - last_prune > 86_400.0:
                    self.store.prune(keep_days=self.config.store.retention_days)
                    self.check_chains()
                    last_prune = self.monotonic()
            except GenbaError as error:
                log.warning("gate evaluation or store upkeep failed: %s", error)
            except Exception as exc:  # (the gatekeeper must outlive any one failure)
                self._report_worker_problem("gate evaluation", self.active.candidate, exc)
            self._stopping.wait(timeout=min(1.0, self.config.gates.evaluate_every_s))

    def check_chains(self) -> None:
        """Verify the audit log and egress ledger from their first entries (the gatekeeper does, daily):
        the API's pages check only what was added since, which cannot see an edit of an older entry
        made behind SQLite's back. A broken chain is listed among the agent's problems."""
        for name, report in self.store.verify_chains(full=True).items():
            problem = f"the {name} chain does not verify from entry {report.first_bad_seq} on"
            if not report.ok and problem not in self.worker_problems:
                self.worker_problems.append(problem)
                log.error(problem)

    # ---------------------------------------------------------------- slots

    def wake(self) -> None:
        self._wake.set()

    def install(self, source: Path, *, actor: str, rollback: bool = False) -> dict[str, Any]:
        return self.slots.install(source, actor=actor, rollback=rollback)

    def promote(self, *, actor: str, to_stage: str | None = None) -> dict[str, Any]:
        return self.slots.promote(actor=actor, to_stage=to_stage)

    def discard(self, *, actor: str, reason: str | None = None) -> dict[str, Any]:
        return self.slots.discard(actor=actor, reason=reason)

    def rollback(self, *, actor: str, version: ModelVersion | None = None) -> dict[str, Any]:
        return self.slots.rollback(actor=actor, version=version)

    def models(self) -> list[dict[str, Any]]:
        slots = self.store.slots()
        in_slot = {s.model_id: s.stage for s in (slots.production, slots.candidate) if s is not None}
        return [
            {
                "model_id": row.id,
                "name": row.name,
                **row.version.json_fields(),
                "signer_key_id": row.signer_key_id,
                "installed_at": row.installed_at,
                "installed_by": row.installed_by,
                "precision": _precision_variant(row.manifest),
                "lineage": row.lineage,
                "stage": in_slot.get(row.id),
            }
            for row in self.store.list_models()
        ]

    # ---------------------------------------------------------------- status

    def describe_active(self) -> dict[str, Any]:
        active = self.active
        candidate = active.candidate.describe() if active.candidate else None
        if candidate is not None:
            candidate.update(stage=active.stage, since=active.since)
        return {
            "production": active.production.describe() if active.production else None,
            "candidate": candidate,
        }

    def status(self) -> dict[str, Any]:
        from edge_agent.federation.budget import privacy_budget

        report = self.recent_gate_report()
        return {
            "site": self.config.site,
            **self.describe_active(),
            "gates": report.to_json() if report else None,
            "holdout": self.store.holdout_status(),
            "audit_sample": self.store.audit_summary() | {"share": self.config.store.audit_share},
            "drift": self.drift_status(),
            "privacy_budget": privacy_budget(self.site, self.store),
            "problems": [*self.load_problems, *self.worker_problems, *self.clock_problems()],
            "batching": self._batcher.stats,
            "shadow_dropped": self.shadow_dropped,
            "uptime_s": round(self.monotonic() - self._started, 1),
            "pid": os.getpid(),
            "store": {"schema_version": self.store.schema_version, "durability": self.store.durability},
            "versions": _versions(),
            "certificates": [c.to_json() for c in site_certificates(self.site, self.clock())],
        }

    def clock_problems(self) -> list[str]:
        """The PC's clock set back behind what the store already holds (``store.steady_clock``)."""
        behind = self.store.clock_held_back_s
        if behind < CLOCK_BEHIND_WARNING_S:
            return []
        return [
            f"this PC's clock is {behind:.0f} s behind the newest time in the site store (set back?); "
            "answers and labels are stamped just after that time until the clock catches up: check its time"
        ]


def _slots_key(slots: Any) -> tuple[Any, ...]:
    """What a gate report is about: the candidate (model, stage, since) and production's model."""
    candidate, production = slots.candidate, slots.production
    return (
        None if candidate is None else (candidate.model_id, candidate.stage, candidate.since),
        None if production is None else production.model_id,
    )


def _caller_latencies(items: Sequence[Item], served: Sequence[ModelAnswer]) -> list[float]:
    """Per item, ms from the agent taking its request to its answers being ready: the queue, the
    wait for company, the models' runs; never less than the model's own time for its batch."""
    now = time.perf_counter()
    return [
        max((now - item.received) * 1000.0, answer.latency_ms)
        for item, answer in zip(items, served, strict=True)
    ]


def _precision_variant(stored: Mapping[str, Any]) -> str | None:
    """The chosen variant from a model row's copy of its manifest (a row from before it kept one: None)."""
    manifest = Manifest.from_record(stored)
    return manifest.precision.variant if manifest and manifest.precision else None


@functools.cache
def _versions() -> dict[str, str | None]:
    """The installed versions status reports, read once: parsing package metadata costs milliseconds."""
    from importlib import metadata

    return {name: _version(metadata, name) for name in ("genba", "onnxruntime-gpu")}


def _version(metadata: Any, name: str) -> str | None:
    try:
        return str(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


def _overlaps(config: AgentConfig) -> bool:
    """Whether the batcher tokenizes the next batch during inference: ``on``, or ``auto`` where a GPU
    is visible to the provider policy (see ``BatchingConfig.overlap``)."""
    from genba.runtime.sessions import cuda_possible

    setting = config.batching.overlap
    return setting == "on" or (setting == "auto" and cuda_possible(config.runtime))
