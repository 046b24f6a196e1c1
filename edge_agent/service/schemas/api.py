"""Request bodies (strict, unknown fields refused) and the answers of predict, labels, slots and drift."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

GroupName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
GroupValue = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Groups = Annotated[dict[GroupName, GroupValue], Field(max_length=16)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: An image file of up to 1,500,000 bytes (``edge_agent.config.IMAGE_BYTES_CEILING``) as base64.
IMAGE_BASE64_CHARS = 2_000_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictRequest(Strict):
    """One input: ``text`` for text bundles, or ``image`` (base64 file bytes) for image bundles."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] | None = None
    image: Annotated[str, StringConstraints(min_length=4, max_length=IMAGE_BASE64_CHARS)] | None = None
    groups: Groups = Field(default_factory=dict, description="tags such as line, shift, product")

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.text is None) == (self.image is None):
            raise ValueError("give exactly one of 'text' or 'image'")
        if self.text is not None and not self.text.strip():
            raise ValueError("'text' is empty (only whitespace)")
        return self


class PredictBatchRequest(Strict):
    items: Annotated[list[PredictRequest], Field(min_length=1, max_length=256)]


class ModelRef(BaseModel):
    name: str
    version: int = Field(description="the release: IT's version number")
    revision: int = Field(
        0, description="0 for IT's release; 1, 2, ... for this site's own candidates from it"
    )
    version_label: str = Field(description="how people write the version: 3 or 3.1")
    variant: str | None = Field(None, description="the bundle variant that answered: cpu, cuda or default")


class ModelAnswerOut(BaseModel):
    label: str | None
    score: float | None
    scores: dict[str, float]
    model: ModelRef
    stage: str
    provider: str
    latency_ms: float


class PredictResponse(ModelAnswerOut):
    input_id: int
    prediction_id: int
    suggestion: ModelAnswerOut | None = Field(
        None, description="the pilot candidate's answer, a marked suggestion that never replaces production's"
    )
    warnings: list[str] = Field(default_factory=list, description="e.g. group tags this site does not know")


class PredictBatchResponse(BaseModel):
    items: list[PredictResponse]


class LabelRequest(Strict):
    input_id: Annotated[int, Field(ge=1, le=2**62)]
    label: LabelName
    operator_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None
    groups: Groups = Field(default_factory=dict)


#: Fields a caller may not send, with why: a body carrying one is refused (422) with this reason.
REFUSED_FIELDS: dict[str, str] = {
    "split": "no caller chooses the split; the agent decides it from the input's content "
    "(held-out labels judge candidates and are never trained on)",
}


class LabelResponse(BaseModel):
    label_id: int
    input_id: int
    label: str
    split: str = Field(description="decided by the agent from the input's content: train or holdout")
    warnings: list[str] = Field(default_factory=list)
    is_correction: bool


class QueueEntry(BaseModel):
    input_id: int
    kind: str
    text: str | None
    label: str | None
    score: float | None
    margin: float | None
    created_at: float
    audit: bool = Field(
        False, description="drawn into the audit sample at random: label it as seen, it estimates accuracy"
    )
    disagreement: bool = Field(
        False,
        description="drawn at random where the candidate and production disagree: label it as seen, "
        "it judges the candidate",
    )


class QueueResponse(BaseModel):
    items: list[QueueEntry]


class InstallRequest(Strict):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    rollback: bool = False


class PromoteRequest(Strict):
    to_stage: Literal["pilot", "production"] | None = None


class RebaselineRequest(Strict):
    reason: Annotated[str, Field(max_length=500)] | None = None


class DiscardRequest(Strict):
    reason: Annotated[str, Field(max_length=500)] | None = None


class HealthResponse(BaseModel):
    status: Literal["ok"]


class InstalledModel(BaseModel):
    """A model in a slot: what it is, who signed it, and which of its variants serves here, where."""

    model_id: int
    name: str
    version: int = Field(description="the release: IT's version number")
    revision: int = Field(description="0 for IT's release; 1, 2, ... for this site's own candidates")
    version_label: str = Field(description="how people write the version: 3 or 3.1")
    task: str | None
    labels: list[str]
    precision: str | None
    signer_key_id: str | None
    signature_verified: bool
    lineage: dict[str, Any] | None
    provider: str
    io_binding: bool
    variant: str
    variant_reason: str | None
    placement: dict[str, Any] | None = Field(description="where the graph's nodes run, on CUDA")


class InstallResponse(BaseModel):
    installed: InstalledModel
    slot: Literal["production", "candidate"]


class PromoteResponse(BaseModel):
    promoted: bool
    model: str | None = None
    stage: str | None = None
    gates: dict[str, Any] | None = Field(description="the gate report the decision rested on")


class RollbackResponse(BaseModel):
    rolled_back_to: InstalledModel
    replaced: str | None = Field(description="the production model it replaced, as name v3")


class TrainingJobOut(BaseModel):
    id: str
    mode: str
    actor: str
    seed: int
    unlabelled: str = "off"
    state: Literal["running", "succeeded", "failed"]
    started_at: float
    finished_at: float | None
    message: str | None = Field(description="why it failed, in one line")
    result: dict[str, Any] | None = Field(description="the training report and the candidate installed")


class TrainingResponse(BaseModel):
    job: TrainingJobOut | None


class ExplanationWord(BaseModel):
    text: str
    weight: float = Field(description="for the answer when positive, against it when negative")


class ExplanationResponse(BaseModel):
    """Occlusion: each word's (or image patch's) weight on the production model's answer."""

    input_id: int
    model: str
    label: str
    score: float
    method: str
    ms: float
    words: list[ExplanationWord] | None = None
    heatmap: list[list[float]] | None = None
    cached: bool


class DiscardResponse(BaseModel):
    discarded: str = Field(description="the candidate that was discarded, as name v3.1")
    stage: str = Field(description="the stage it was in: shadow or pilot")
    reason: str | None


class DriftCheckOut(BaseModel):
    """One window's test: its status, the test that decided it, and whether it raised an alarm."""

    id: int | None = None
    model_id: int | None = None
    status: Literal["ok", "warning", "drift"]
    reference: str = Field(description="manifest (while the reference is built) or production")
    feature: str = Field(description="the feature with the smallest corrected p-value")
    statistic: float
    p_value: float = Field(description="corrected for the number of tests")
    tests: int
    items: int
    first_prediction: int
    last_prediction: int
    created_at: float | None = None
    alarm: bool = Field(description="a drift window that opened an episode; later ones of it do not alarm")


class DriftReferenceOut(BaseModel):
    first_prediction: int
    last_prediction: int
    items: int
    created_at: float


class DriftStatus(BaseModel):
    """The production model's drift: the latest check, the open episode, the reference being compared with."""

    enabled: bool
    status: Literal["ok", "warning", "drift"] | None = Field(description="None before a first full window")
    model: str | None = None
    latest: DriftCheckOut | None = None
    episode_open: bool = False
    alarm: DriftCheckOut | None = Field(None, description="the check that opened the episode still open")
    reference: DriftReferenceOut | None = None
    reference_complete: bool = False
    reference_items_needed: int | None = Field(None, description="answers the reference is built from")
    strata: list[str] = Field(default_factory=list, description="group tags compared like with like")
    window_items: int | None = None
    items_in_current_window: int | None = None
    alpha: float | None = None
    warning_alpha: float | None = None
    labels_requested: int = 0
    reason: str | None = None


class DriftResponse(DriftStatus):
    checks: list[DriftCheckOut] = Field(description="the latest window checks of every model, newest first")


class RollbackRequest(Strict):
    version: (
        Annotated[int, Field(ge=0, le=2**31)]
        | Annotated[str, Field(pattern=r"^v?\d{1,9}(\.\d{1,9})?$", description="3 or 3.1")]
        | None
    ) = None


class TrainRequest(Strict):
    mode: Literal["head", "last-k", "contrastive", "auto"] = "head"
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0
    unlabelled: Literal["off", "adapt", "pseudo"] = "off"


class ChainEntryOut(BaseModel):
    seq: int
    created_at: float
    fields: dict[str, Any]
    hash: str


class ChainResponse(BaseModel):
    entries: list[ChainEntryOut]
    verified: bool = Field(description="whether the whole hash chain verified when this was read")
    totals: dict[str, int] | None = Field(None, description="egress only: bytes that left, by kind")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
