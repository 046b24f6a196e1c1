"""Fine-tune the top transformer blocks and the head together on the site's training labels.

The last ``k`` blocks of the source model and a head that starts as the parent's head are
trained with AdamW on a class-balanced cross-entropy; everything below stays frozen. Early
stopping watches a stratified validation split drawn from the TRAINING labels only (held-out
labels belong to the rollout gates) and picks the number of epochs (best validation accuracy,
then loss); training then starts over on all training labels for that many epochs, as head
mode refits on all of them: with 20 labels per class a fifth held out is a lot to give up.
Seeded: the same labels, model and seed give the same weights on the same device.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_agent.config import TrainingConfig
from edge_agent.training.head import stratified_split
from edge_agent.training.source import SourceModel
from export.graphs import HeadWeights
from export.head_training import class_balancing, starting_head

Encode = Callable[[Sequence[str]], Mapping[str, np.ndarray]]
#: Epochs trained when the labels are too few to hold a validation split out.
FALLBACK_EPOCHS = 3


@dataclass(frozen=True)
class FineTuned:
    head: HeadWeights
    #: The trained parameters by state-dict name, on the CPU (what the site keeps for next time).
    trained: dict[str, Any]
    report: dict[str, Any]


def training_device(provider: str) -> Any:
    """CUDA when the provider policy allows it and torch sees a GPU; ``gpu`` refuses to run without."""
    import torch

    from genba.errors import ProviderUnavailableError

    if provider != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    if provider == "gpu":
        raise ProviderUnavailableError(
            "provider 'gpu' was asked for but torch sees no CUDA device here; use --provider cpu or auto"
        )
    return torch.device("cpu")


def fine_tune(
    source: SourceModel,
    encode: Encode,
    texts: Sequence[str],
    label_indices: np.ndarray,
    prior: HeadWeights,
    config: TrainingConfig,
    *,
    seed: int = 0,
    device: Any = None,
) -> FineTuned:
    import torch

    started = time.perf_counter()
    device = device or torch.device("cpu")
    targets = np.asarray(label_indices, dtype=np.int64)
    train, validation = stratified_split(targets, config.validation_fraction, seed)
    if len(np.unique(targets[train])) < 2:
        train, validation = np.arange(len(targets)), np.array([], dtype=np.int64)
    k = unfreeze_top(source, config.last_k)
    model = source.model.to(device)
    head = starting_head(prior.weight.shape[1], prior.num_labels, seed, prior).to(device)
    run = _Run(source, encode, texts, targets, head, device)
    history: list[dict[str, Any]] = []
    best_epoch: int | None = None
    if len(validation):
        initial = _snapshot(model, head)
        best_epoch = _choose_epochs(run, train, validation, config, seed, history)
        _restore(model, head, initial)
        epochs = best_epoch
    else:
        epochs = min(FALLBACK_EPOCHS, config.max_epochs)
    everything = np.arange(len(targets))
    final_loss = run.train(everything, epochs, config, seed)
    trained = freeze_trained(model)
    weights = HeadWeights(
        head.weight.detach().cpu().numpy().astype(np.float32),
        head.bias.detach().cpu().numpy().astype(np.float32),
    )
    report = {
        "blocks_total": len(source.blocks),
        "blocks_trained": k,
        "examples": int(len(targets)),
        "train_size": int(len(train)),
        "validation_size": int(len(validation)),
        "best_epoch": best_epoch,
        "validation_accuracy": history[best_epoch - 1]["validation_accuracy"] if best_epoch else None,
        "selection": "epochs by best validation accuracy, then loss"
        if best_epoch
        else "fixed epochs (too few labels to hold out)",
        "epochs": history,
        "refit_on": "all training labels",
        "refit_epochs": epochs,
        "refit_train_loss": round(final_loss, 6),
        "device": str(device),
        "seed": seed,
        "config": asdict(config),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return FineTuned(head=weights, trained=trained, report=report)


def _choose_epochs(
    run: _Run,
    train: np.ndarray,
    validation: np.ndarray,
    config: TrainingConfig,
    seed: int,
    history: list[dict[str, Any]],
) -> int:
    """Train on ``train`` while validation improves (``patience`` epochs of grace); the best epoch."""
    best: tuple[tuple[float, float], int] | None = None
    optimizer, loss_fn, rng = run.start(train, config, seed)
    for epoch in range(1, config.max_epochs + 1):
        train_loss = run.epoch(rng.permutation(train), config.batch_size, optimizer, loss_fn)
        accuracy, loss = run.score(validation, config.batch_size)
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "validation_accuracy": accuracy,
                "validation_loss": loss,
            }
        )
        if best is None or (accuracy, -loss) > best[0]:
            best = ((accuracy, -loss), epoch)
        if epoch - best[1] >= config.patience:
            break
    assert best is not None
    return best[1]


class _Run:
    """One training run's batches: encoded with the bundle's own preprocessing, on the device."""

    def __init__(
        self,
        source: SourceModel,
        encode: Encode,
        texts: Sequence[str],
        targets: np.ndarray,
        head: Any,
        device: Any,
    ) -> None:
        self.source, self.encode, self.texts, self.head, self.device = source, encode, texts, head, device
        import torch

        self.targets_np = targets
        self.targets = torch.from_numpy(targets).to(device)

    def start(self, positions: np.ndarray, config: TrainingConfig, seed: int) -> tuple[Any, Any, Any]:
        """A fresh optimizer, class-balanced loss and shuffling order, seeded: every start is repeatable."""
        import torch

        torch.manual_seed(seed)
        trainable = [p for p in self.source.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable + list(self.head.parameters()), lr=config.learning_rate, weight_decay=0.01
        )
        counts = torch.bincount(
            torch.from_numpy(self.targets_np[positions]), minlength=self.head.out_features
        )
        weights = class_balancing(counts.float(), self.head.out_features).to(self.device)
        return optimizer, torch.nn.CrossEntropyLoss(weight=weights), np.random.default_rng(seed)

    def train(self, positions: np.ndarray, epochs: int, config: TrainingConfig, seed: int) -> float:
        optimizer, loss_fn, rng = self.start(positions, config, seed)
        loss = float("nan")
        for _ in range(epochs):
            loss = self.epoch(rng.permutation(positions), config.batch_size, optimizer, loss_fn)
        return loss

    def logits(self, positions: np.ndarray) -> Any:
        feeds = self.encode([self.texts[i] for i in positions])
        return self.head(self.source.embed(feeds, self.device))

    def epoch(self, order: np.ndarray, batch_size: int, optimizer: Any, loss_fn: Any) -> float:
        self.source.model.train()
        losses = []
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            loss = loss_fn(self.logits(positions), self.targets[positions])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def score(self, positions: np.ndarray, batch_size: int) -> tuple[float, float]:
        import torch

        self.source.model.eval()
        correct, total_loss = 0, 0.0
        with torch.no_grad():
            for start in range(0, len(positions), batch_size):
                chunk = positions[start : start + batch_size]
                logits = self.logits(chunk)
                expected = self.targets[chunk]
                correct += int((logits.argmax(dim=1) == expected).sum())
                total_loss += float(torch.nn.functional.cross_entropy(logits, expected, reduction="sum"))
        return round(correct / len(positions), 6), round(total_loss / len(positions), 6)


def unfreeze_top(source: SourceModel, k: int) -> int:
    for parameter in source.model.parameters():
        parameter.requires_grad_(False)
    k = min(k, len(source.blocks))
    for block in list(source.blocks)[-k:]:
        for parameter in block.parameters():
            parameter.requires_grad_(True)
    return k


def freeze_trained(model: Any) -> dict[str, Any]:
    """End training: the parameters that were trained, on the CPU, then the model in eval mode, frozen."""
    model.eval()
    trained = {
        name: p.detach().cpu().clone().contiguous() for name, p in model.named_parameters() if p.requires_grad
    }
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return trained


def _snapshot(model: Any, head: Any) -> dict[str, Any]:
    trained = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    return {"model": trained, "head": copy.deepcopy(head.state_dict())}


def _restore(model: Any, head: Any, snapshot: dict[str, Any]) -> None:
    model.load_state_dict(snapshot["model"], strict=False)
    head.load_state_dict(snapshot["head"])
