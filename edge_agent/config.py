"""The agent's configuration: one frozen dataclass per part, read from ``agent.toml``.

Every part validates itself; :func:`load_agent_config` gathers every problem
from every part before it raises, so a site engineer fixes the file in one go.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.serving import BatchingConfig
from edge_agent.split import DEFAULT_HOLDOUT_REUSE_LIMIT
from edge_agent.store.connection import DEFAULT_DURABILITY, SYNCHRONOUS_BY_DURABILITY
from edge_agent.training_modes import TRAINING_MODES
from genba.errors import ConfigError, shown
from genba.names import is_site_name
from genba.runtime.config import RuntimeConfig

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
#: How the accuracy gate decides (:class:`GateConfig`).
DECISIONS = ("non-inferiority", "superiority")
#: Which held-out labels the gates judge on: the audit sample's (unbiased) or all.
EVIDENCE = ("disagreement", "audit", "all")
#: The modes ``--mode auto`` may try, quickest first (a tie goes to the earlier one).
AUTO_MODES = ("head", "last-k", "contrastive")


@dataclass(frozen=True)
class GateConfig:
    """When a candidate may advance a stage on its own (a supervisor may always advance it).

    Accuracy is judged paired (both models on the same held-out inputs) with an anytime-valid
    test (:mod:`edge_agent.evidence`), since the gates are checked every few seconds:
    ``decision = "non-inferiority"`` passes once the candidate is shown, at confidence
    ``1 - alpha``, to be less than ``max_accuracy_drop_pts`` points behind production (its
    margin); ``"superiority"`` once it is shown more accurate. Agreement is bounded below, not
    above, because a better model must be free to disagree where production is wrong.

    ``evidence``: ``"disagreement"`` (default) judges on every held-out input both models answered
    in the stage, where a share ``disagreement_share`` of the inputs they answered differently is
    drawn for labelling (weighted by its inverse: unbiased for the traffic); ``"audit"`` on the
    audit sample's held-out labels; ``"all"`` on every held-out label, queue included (biased
    towards production's hardest items). ``min_labels`` applies to ``"audit"`` and ``"all"``.
    """

    min_items: int = 200
    min_labels: int = 30
    min_agreement: float = 0.7
    decision: str = "non-inferiority"
    max_accuracy_drop_pts: float = 1.0
    alpha: float = 0.05
    evidence: str = "disagreement"
    disagreement_share: float = 0.5
    latency_p95_budget_ms: float = 250.0
    auto_advance: bool = True
    evaluate_every_s: float = 5.0

    @property
    def accuracy_threshold_pts(self) -> float:
        """The accuracy difference (candidate minus production, points) the evidence must exceed."""
        return 0.0 if self.decision == "superiority" else -self.max_accuracy_drop_pts

    def __post_init__(self) -> None:
        problems = []
        if self.min_items < 1:
            problems.append("gates.min_items must be >= 1")
        if self.min_labels < 1:
            problems.append("gates.min_labels must be >= 1")
        if not 0.0 <= self.min_agreement <= 1.0:
            problems.append("gates.min_agreement must be between 0 and 1")
        if not 0 <= self.max_accuracy_drop_pts < 100:
            problems.append("gates.max_accuracy_drop_pts must be >= 0 and below 100")
        if self.decision not in DECISIONS:
            problems.append(f"gates.decision must be one of {', '.join(DECISIONS)}")
        if not 0.0 < self.alpha < 0.5:
            problems.append("gates.alpha must be between 0 and 0.5")
        if self.evidence not in EVIDENCE:
            problems.append(f"gates.evidence must be one of {', '.join(EVIDENCE)}")
        if not 0.0 < self.disagreement_share <= 1.0:
            problems.append("gates.disagreement_share must be above 0 and at most 1")
        if self.latency_p95_budget_ms <= 0:
            problems.append("gates.latency_p95_budget_ms must be > 0")
        if self.evaluate_every_s <= 0:
            problems.append("gates.evaluate_every_s must be > 0")
        if problems:
            raise ConfigError(problems)


#: The largest image file the API's schema takes: 2,000,000 characters of base64.
IMAGE_BYTES_CEILING = 1_500_000
#: Room a request body needs beside one image's base64 (field names, group tags).
REQUEST_OVERHEAD_BYTES = 8192


@dataclass(frozen=True)
class ApiConfig:
    """The local API: loopback only, bounded requests.

    Images travel as base64 in JSON, 4 characters for every 3 bytes of the file, so the body
    limit must hold one image's base64: ``max_image_bytes`` (0: as large as one request of
    ``max_request_bytes`` holds, up to the schema's ceiling) may not ask for more.
    """

    host: str = "127.0.0.1"
    port: int = 0
    max_request_bytes: int = 4 << 20
    max_batch_items: int = 256
    max_text_chars: int = 20_000
    max_image_bytes: int = 0
    #: How old a polled read view may be when answered (seconds; 0: computed for every request).
    view_max_age_s: float = 2.0
    #: Polled views one role's apps may ask for per second together (0: no pace).
    polled_views_per_second: float = 20.0

    @property
    def image_bytes_limit(self) -> int:
        """The largest image file one request takes, as the API enforces it."""
        return self.max_image_bytes or min(IMAGE_BYTES_CEILING, self._image_bytes_fitting())

    def _image_bytes_fitting(self) -> int:
        return max(0, (self.max_request_bytes - REQUEST_OVERHEAD_BYTES) * 3 // 4)

    def __post_init__(self) -> None:
        problems = []
        if self.host not in LOOPBACK_HOSTS:
            problems.append(
                f"api.host must be a loopback address ({', '.join(LOOPBACK_HOSTS)}), not {self.host!r}"
            )
        if not 0 <= self.port <= 65535:
            problems.append("api.port must be between 0 (any free port) and 65535")
        if self.max_request_bytes < 1024:
            problems.append("api.max_request_bytes must be >= 1024")
        if self.max_batch_items < 1:
            problems.append("api.max_batch_items must be >= 1")
        if self.max_text_chars < 1:
            problems.append("api.max_text_chars must be >= 1")
        if not 0 <= self.max_image_bytes <= IMAGE_BYTES_CEILING:
            problems.append(
                f"api.max_image_bytes must be between 0 (as a request holds) and {IMAGE_BYTES_CEILING}"
            )
        elif self.max_image_bytes > self._image_bytes_fitting():
            problems.append(
                f"api.max_image_bytes ({self.max_image_bytes}) does not fit api.max_request_bytes "
                f"({self.max_request_bytes}) as base64: raise api.max_request_bytes to at least "
                f"{-(-self.max_image_bytes * 4 // 3) + REQUEST_OVERHEAD_BYTES} or lower api.max_image_bytes"
            )
        if not 0 <= self.view_max_age_s <= 60:
            problems.append("api.view_max_age_s must be between 0 (no cache) and 60 seconds")
        if not 0 <= self.polled_views_per_second <= 10_000:
            problems.append("api.polled_views_per_second must be between 0 (no pace) and 10000")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class StoreConfig:
    """What the site store keeps and how labels are split between training and gates.

    ``holdout_fraction``: share of contents whose labels are held out (decided by a hash of the
    normalised content, keyed by the site: ``edge_agent.split``). ``holdout_reuse_limit``: distinct
    candidates judged on one held-out set before held-out labels start a new one. ``audit_share``:
    share of served inputs drawn at random into the audit sample, which the labelling queue offers
    first and whose labels the gates and the KPI report judge on (``edge_agent.store.audit_sample``).
    ``durability``: what an acknowledged prediction or label survives, ``power_cut`` (the default:
    flushed to the disk before it is acknowledged) or ``process_kill`` (``edge_agent.store.connection``).
    """

    retention_days: float = 90.0
    holdout_fraction: float = 0.3
    holdout_reuse_limit: int = DEFAULT_HOLDOUT_REUSE_LIMIT
    audit_share: float = 0.02
    durability: str = DEFAULT_DURABILITY

    def __post_init__(self) -> None:
        problems = []
        if self.retention_days <= 0:
            problems.append("store.retention_days must be > 0")
        if not 0.0 < self.holdout_fraction < 1.0:
            problems.append("store.holdout_fraction must be between 0 and 1 (exclusive)")
        if isinstance(self.holdout_reuse_limit, bool) or not isinstance(self.holdout_reuse_limit, int):
            problems.append("store.holdout_reuse_limit must be a whole number")
        elif self.holdout_reuse_limit < 1:
            problems.append("store.holdout_reuse_limit must be >= 1")
        if not 0.0 <= self.audit_share <= 1.0:
            problems.append("store.audit_share must be between 0 and 1")
        if self.durability not in SYNCHRONOUS_BY_DURABILITY:
            choices = ", ".join(map(repr, SYNCHRONOUS_BY_DURABILITY))
            problems.append(f"store.durability must be one of {choices}")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class TrainingConfig:
    """Site training. ``head`` mode needs nothing here; ``last-k`` fine-tunes the source torch model.

    ``source_model``: the Hugging Face / sentence-transformers folder the production bundle was
    exported from ("" = the packaged all-MiniLM-L6-v2 that the default bundle uses). Training
    checks it against the production backbone before it starts. ``last_k``: transformer blocks
    unfrozen, counted from the top (all of them when the model has fewer).
    """

    source_model: str = ""
    last_k: int = 6
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_epochs: int = 12
    patience: int = 3
    validation_fraction: float = 0.2
    #: ``contrastive``: SetFit's pair passes over the labels, the most pairs trained, their step size.
    contrastive_iterations: int = 20
    contrastive_max_pairs: int = 1000
    contrastive_learning_rate: float = 2e-5
    #: ``--unlabelled adapt``: at most this many unlabelled texts, in batches of this size, this step.
    adapt_max_texts: int = 2000
    adapt_batch_size: int = 32
    adapt_learning_rate: float = 3e-5
    #: ``--unlabelled pseudo`` (head mode): production's answers at or above this score become labels.
    pseudo_threshold: float = 0.9
    #: ``--mode auto``: the chance it may take of training a mode no better than production, the
    #: cross-validation folds that judge the modes, and the modes it tries.
    auto_alpha: float = 0.1
    auto_folds: int = 5
    auto_modes: tuple[str, ...] = ("head", "last-k")

    def __post_init__(self) -> None:
        problems = []
        if self.adapt_max_texts < 1 or self.adapt_batch_size < 2:
            problems.append("training.adapt_max_texts must be >= 1 and adapt_batch_size >= 2")
        if not 0.0 < self.adapt_learning_rate < 1.0:
            problems.append("training.adapt_learning_rate must be between 0 and 1")
        if not 0.0 < self.pseudo_threshold <= 1.0:
            problems.append("training.pseudo_threshold must be > 0 and <= 1")
        object.__setattr__(self, "auto_modes", tuple(self.auto_modes))
        if not 0.0 < self.auto_alpha < 1.0:
            problems.append("training.auto_alpha must be between 0 and 1")
        if self.auto_folds < 2:
            problems.append("training.auto_folds must be >= 2")
        if not self.auto_modes or any(mode not in AUTO_MODES for mode in self.auto_modes):
            problems.append(f"training.auto_modes must list one or more of {', '.join(AUTO_MODES)}")
        if self.contrastive_iterations < 1 or self.contrastive_max_pairs < 1:
            problems.append("training.contrastive_iterations and contrastive_max_pairs must be >= 1")
        if not 0.0 < self.contrastive_learning_rate < 1.0:
            problems.append("training.contrastive_learning_rate must be between 0 and 1")
        if self.last_k < 1:
            problems.append("training.last_k must be >= 1")
        if not 0.0 < self.learning_rate < 1.0:
            problems.append("training.learning_rate must be between 0 and 1")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            problems.append("training.batch_size, max_epochs and patience must be >= 1")
        if not 0.0 <= self.validation_fraction < 1.0:
            problems.append("training.validation_fraction must be >= 0 and < 1")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class DriftConfig:
    """Drift monitoring of production inputs, window by window.

    The first ``reference_windows`` windows of ``window_items`` production answers of a model are
    tested against the export's reference statistics (at most a warning: the export's data is not
    this site's production) and together become the model's reference, long enough to span the
    blocks traffic comes in (lines, shifts); every following window is compared with it, stratum by
    stratum on the group tags named in ``strata`` (``edge_agent.drift.matched_reference``). A new
    production model, or a supervisor acknowledging a shift, starts a new reference. ``alpha`` is
    the per-window false-alarm level of "drift" (after the multiple-testing correction),
    ``warning_alpha`` that of "warning". A drift alarm opens an episode that closes after
    ``clear_windows`` windows in a row without drift (hysteresis: one alarm per episode, not one
    per window). On an alarm the agent asks operators for ``request_labels`` labels from the
    drifted window and, with ``train_on_drift``, starts local training (``train_mode``) once the
    site has the labels training needs.
    """

    enabled: bool = True
    window_items: int = 200
    reference_windows: int = 8
    strata: tuple[str, ...] = ("line", "shift")
    alpha: float = 0.01
    warning_alpha: float = 0.05
    clear_windows: int = 2
    projections: int = 4
    request_labels: int = 20
    train_on_drift: bool = False
    train_mode: str = "head"

    def __post_init__(self) -> None:
        problems = []
        object.__setattr__(self, "strata", tuple(self.strata))
        if not 1 <= self.reference_windows <= 50:
            problems.append("drift.reference_windows must be between 1 and 50")
        if any(not _is_tag(key) for key in self.strata):
            problems.append("drift.strata must be a list of group tag names (letters, digits, _ . -)")
        if not 1 <= self.clear_windows <= 100:
            problems.append("drift.clear_windows must be between 1 and 100")
        if self.window_items < 20:
            problems.append("drift.window_items must be >= 20 (smaller windows cannot tell drift from noise)")
        if not 0.0 < self.alpha <= self.warning_alpha < 1.0:
            problems.append("drift.alpha and warning_alpha must satisfy 0 < alpha <= warning_alpha < 1")
        if not 0 <= self.projections <= 64:
            problems.append("drift.projections must be between 0 and 64")
        if self.request_labels < 0:
            problems.append("drift.request_labels must be >= 0")
        if self.train_mode not in TRAINING_MODES:
            problems.append(f"drift.train_mode must be one of {', '.join(TRAINING_MODES)}")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class GroupsConfig:
    """Group tags inputs may carry, and how the gates treat groups.

    ``min_labels``: held-out labels a group needs before its accuracy is judged (with the gates'
    disagreement sample, held-out inputs both models answered, labelled where drawn); smaller groups
    are unjudged, stated in every gate decision (``unjudged = "state"``) or holding the candidate
    until they have them (``"hold"``), never silently dropped. ``max_drop_pts``: a judged group
    shown (anytime-valid, :mod:`edge_agent.evidence`) to be more than this many points less
    accurate under the candidate than under production holds the candidate.
    """

    keys: tuple[str, ...] = ("line", "shift", "product", "site")
    min_labels: int = 10
    max_drop_pts: float = 5.0
    unjudged: str = "state"

    def __post_init__(self) -> None:
        problems = []
        object.__setattr__(self, "keys", tuple(self.keys))
        if not self.keys or any(not _is_tag(key) for key in self.keys):
            problems.append("groups.keys must be a non-empty list of names (letters, digits, _ . -)")
        if self.min_labels < 1:
            problems.append("groups.min_labels must be >= 1")
        if not 0 <= self.max_drop_pts < 100:
            problems.append("groups.max_drop_pts must be >= 0 and below 100")
        if self.unjudged not in ("state", "hold"):
            problems.append('groups.unjudged must be "state" or "hold"')
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class CostConfig:
    """What the plant says things cost, for the KPI report's cost-benefit estimate (any currency).

    ``escape_share``: of the model's wrong answers, the share that escapes as a defect (operators
    review the answers and catch the rest); 1.0 prices every wrong answer as an escape.
    """

    currency: str = "EUR"
    operator_minute: float = 0.8
    defect_escape: float = 150.0
    escape_share: float = 0.05
    pc_hour: float = 0.05
    manual_seconds_per_item: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.currency, str):
            problems.append(f'costs.currency must be text such as "EUR", not {type(self.currency).__name__}')
        elif not self.currency.strip():
            problems.append("costs.currency must not be empty")
        for name in ("operator_minute", "defect_escape", "pc_hour", "manual_seconds_per_item"):
            if getattr(self, name) < 0:
                problems.append(f"costs.{name} must be >= 0")
        if not 0.0 <= self.escape_share <= 1.0:
            problems.append("costs.escape_share must be between 0 and 1")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class FederationConfig:
    """This site in federated training.

    ``epsilon_budget``: the lifetime epsilon (at delta = 1e-5) this site may spend on
    differentially private runs, composed over every round it ever contributed to; a round that
    would take it past the budget is declined, before anything of it is masked or sent. The
    default, 10, is about the largest epsilon still read as a meaningful guarantee; it allows, for
    instance, 3 rounds at noise multiplier 1.0, 12 at 2.0 or 48 at 4.0 (epsilon 9.0 each). The
    ClientApp reads it at every round, so lowering it takes effect without a restart. Runs without
    DP spend nothing and promise nothing beyond secure aggregation.
    """

    epsilon_budget: float = 10.0

    def __post_init__(self) -> None:
        budget = self.epsilon_budget
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
            raise ConfigError(
                [f"federation.epsilon_budget must be a number > 0 (the site's lifetime ε), not {budget!r}"]
            )


def _is_tag(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) <= 64 and all(c.isalnum() or c in "_.-" for c in name)


@dataclass(frozen=True)
class AgentConfig:
    site: str = "site"
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    shadow_queue: int = 256

    def __post_init__(self) -> None:
        problems = []
        if not is_site_name(self.site):
            problems.append(f"site name {self.site!r} must be ASCII letters, digits, '-' or '_'")
        if self.batching.max_queue < self.api.max_batch_items:
            problems.append(
                f"batching.max_queue ({self.batching.max_queue}) must be at least api.max_batch_items "
                f"({self.api.max_batch_items}), or large batch requests could never be queued"
            )
        if problems:
            raise ConfigError(problems)


_SECTIONS: dict[str, Callable[..., Any]] = {
    "runtime": RuntimeConfig,
    "batching": BatchingConfig,
    "gates": GateConfig,
    "api": ApiConfig,
    "store": StoreConfig,
    "training": TrainingConfig,
    "drift": DriftConfig,
    "groups": GroupsConfig,
    "costs": CostConfig,
    "federation": FederationConfig,
}

T = TypeVar("T")


def load_agent_config(path: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> AgentConfig:
    """Read ``agent.toml``; ``overrides`` (section → key → value) win over the file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError([f"{path} not found; create the site with 'genba agent init'"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path} is not valid TOML: {exc}"]) from exc
    return config_from_mapping(document, overrides)


def config_from_mapping(
    document: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> AgentConfig:
    problems: list[str] = []
    parts: dict[str, Any] = {}
    known = {"site", "shadow_queue", *_SECTIONS}
    problems += [f"unknown setting {key!r}" for key in document if key not in known]
    for name, factory in _SECTIONS.items():
        section = document.get(name) or {}
        if not isinstance(section, Mapping):
            problems.append(f"[{name}] must be a table of settings, not {type(section).__name__}")
            continue
        values = {**section, **dict((overrides or {}).get(name) or {})}
        part = _build(name, factory, values, problems)
        if part is not None:
            parts[name] = part
    if problems:
        raise ConfigError(problems)
    site = document.get("site", {})
    name = site.get("name", "site") if isinstance(site, Mapping) else site
    try:
        return AgentConfig(site=str(name), shadow_queue=int(document.get("shadow_queue", 256)), **parts)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError([str(exc)]) from exc


def _build(name: str, factory: Callable[..., T], values: Mapping[str, Any], problems: list[str]) -> T | None:
    allowed = {f.name for f in fields(factory)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - allowed)
    if unknown:
        problems.extend(f"unknown setting {name}.{shown(key)}" for key in unknown)
        return None
    try:
        return factory(**values)
    except ConfigError as error:
        problems.extend(error.problems)
    except TypeError as exc:
        problems.append(f"[{name}]: {exc}")
    return None


def default_toml(site: str) -> str:
    """The ``agent.toml`` written by ``genba agent init``: every setting, at its default, explained."""
    return f"""# Genba site agent. Changes take effect when the agent restarts.
[site]
name = "{site}"

[runtime]
provider = "auto"            # auto: CUDA when it really loads, else CPU | gpu: refuse without CUDA | cpu
intra_op_threads = 0         # 0 = one per physical core
graph_optimization = "all"
io_binding = "auto"          # auto: on with CUDA
spin_wait = true             # ONNX Runtime threads spin between runs (lower batch-1 latency, busier cores)
tokenizer_threads = 0        # threads tokenizing big batches; 0: up to 8 where CUDA serves, else 1

[batching]
max_batch_size = 32          # concurrent requests share one batch up to this size
max_wait_ms = 2.0            # waited for more requests only while under concurrent load
overlap = "off"              # on: tokenize the next batch during inference (auto: on with a GPU)

[gates]
min_items = 200              # candidate answers in a stage before it may advance on its own
min_labels = 30              # held-out operator labels needed to judge accuracy
min_agreement = 0.7          # share of inputs where candidate and production agree
decision = "non-inferiority" # or "superiority": the candidate must be shown more accurate
max_accuracy_drop_pts = 1.0  # non-inferiority margin: shown less than this many points behind production
alpha = 0.05                 # chance of promoting a candidate that is not (checked continuously)
evidence = "disagreement"    # held-out inputs the models answer differently, drawn for labels; "audit", "all"
disagreement_share = 0.5     # chance each such input is drawn into the labelling queue
latency_p95_budget_ms = 250.0
auto_advance = true

[api]
host = "127.0.0.1"           # loopback only
port = 0                     # 0 = any free port; the address is written to agent.addr
max_request_bytes = 4194304   # a request body; images travel as base64 (4 characters per 3 bytes)
max_batch_items = 256
max_image_bytes = 0          # largest image file; 0 = as large as one request holds (up to 1500000)
view_max_age_s = 2.0         # polled views (status, KPIs, report, queue...) may be this old; 0 = never cached
polled_views_per_second = 20.0  # views one role's apps may poll a second together; 0 = no pace

[store]
retention_days = 90          # raw inputs without labels are blanked after this
holdout_fraction = 0.3       # share of report contents whose labels judge candidates, never train
holdout_reuse_limit = 10     # candidates judged on one held-out set before new labels start another
audit_share = 0.02           # served inputs drawn at random for labelling: the gates' unbiased evidence
durability = "power_cut"     # acknowledged writes survive a power cut ("process_kill": a killed process only)

[training]
source_model = ""            # last-k: the torch model the bundle came from ("" = packaged all-MiniLM-L6-v2)
last_k = 6                   # last-k: transformer blocks unfrozen, from the top (all when fewer)
learning_rate = 5e-5
batch_size = 16
max_epochs = 12              # early stopping on a validation split of the training labels
patience = 3
validation_fraction = 0.2
contrastive_iterations = 20  # contrastive: SetFit passes, each pairs every label with its class and another
contrastive_max_pairs = 1000 # contrastive: at most this many pairs (one epoch over them)
contrastive_learning_rate = 2e-5
adapt_max_texts = 2000       # --unlabelled adapt: the newest unlabelled training-split texts used
adapt_batch_size = 32
adapt_learning_rate = 3e-5
pseudo_threshold = 0.9       # --unlabelled pseudo: production's answers this sure become labels
auto_alpha = 0.1             # --mode auto: chance it may take of training a mode no better than production
auto_folds = 5               # --mode auto: each label judges the modes once, by a model not trained on it
auto_modes = ["head", "last-k"]  # --mode auto: the modes it tries (add "contrastive": 6 fits more)

[drift]
enabled = true
window_items = 200           # production answers per window
reference_windows = 8        # the first windows of a model (or after an acknowledged shift): its reference
strata = ["line", "shift"]   # group tags compared like with like (line 2 at night against line 2 at night)
alpha = 0.01                 # per-window false-alarm level of "drift" (after multiple-testing correction)
warning_alpha = 0.05         # per-window level of "warning"
clear_windows = 2            # after an alarm, windows in a row without drift before another alarm
projections = 4              # fixed random directions of the embedding tested besides the scores
request_labels = 20          # on drift: labels asked for from the drifted window
train_on_drift = false       # on drift: also start local training once enough labels exist
train_mode = "head"

[groups]
keys = ["line", "shift", "product", "site"]  # tags inputs may carry; others are kept but flagged
min_labels = 10              # held-out labels a group needs before its accuracy is judged
max_drop_pts = 5.0           # a group shown to lose more than this many points holds the candidate
unjudged = "state"           # groups under min_labels: "state" them in each decision, or "hold"

[costs]                      # for the KPI report's cost-benefit estimate
currency = "EUR"
operator_minute = 0.8
defect_escape = 150.0
escape_share = 0.05          # share of the model's wrong answers that escape (operators catch the rest)
pc_hour = 0.05
manual_seconds_per_item = 30.0  # an operator's time to judge one item without the model

[federation]
epsilon_budget = 10.0        # lifetime ε (δ = 1e-5) for differentially private runs; past it, it declines
"""
