"""The torch reference every ONNX variant is compared with, fed the very same arrays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export.graphs import HeadWeights

_BATCH = 32


class TorchReference:
    """Runs the source model in torch and returns ``embedding`` (and ``logits``) like the bundle.

    ``kind`` is ``sentence`` (sentence-transformers pooling), ``classifier`` (the
    embedding is the input of the final linear layer, captured by a hook) or
    ``features`` (pooling applied to last_hidden_state exactly as in the graph), or
    ``module`` (a plain torch module whose output is ``module_output``).
    """

    def __init__(
        self,
        model: Any,
        kind: str,
        modality: str,
        head: HeadWeights | None = None,
        module_output: str = "embedding",
    ) -> None:
        import torch

        self.model = model
        self.kind = kind
        self.module_output = module_output
        self.modality = modality
        self._head = (
            (torch.from_numpy(head.weight.astype(np.float32)), torch.from_numpy(head.bias.astype(np.float32)))
            if head is not None
            else None
        )

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs: list[dict[str, np.ndarray]] = []
        size = len(next(iter(feeds.values())))
        for start in range(0, size, _BATCH):
            chunk = {k: v[start : start + _BATCH] for k, v in feeds.items()}
            outputs.append(self._run_chunk(chunk))
        return {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}

    def _run_chunk(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        with torch.inference_mode():
            if self.kind == "sentence":
                embedding = self.model(dict(tensors))["sentence_embedding"]
            elif self.kind == "classifier":
                return self._classifier(tensors)
            elif self.kind == "module" and self.module_output == "logits":
                return {"logits": self.model(**tensors).float().numpy()}
            elif self.kind == "module":
                embedding = self.model(**tensors)
            else:
                embedding = self._pooled(self.model(**tensors).last_hidden_state, tensors)
            result = {"embedding": embedding.float().numpy()}
            if self._head is not None:
                weight, bias = self._head
                result["logits"] = (embedding.float() @ weight.T + bias).numpy()
        return result

    def _classifier(self, tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import torch

        linear = final_linear_module(self.model)
        captured: list[torch.Tensor] = []
        handle = linear.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            logits = self.model(**tensors).logits
        finally:
            handle.remove()
        return {"embedding": captured[-1].float().numpy(), "logits": logits.float().numpy()}

    def _pooled(self, hidden: Any, tensors: Mapping[str, Any]) -> Any:
        if self.modality == "image":
            return hidden.mean(dim=1)
        mask = tensors["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def final_linear_module(model: Any) -> Any:
    """The last ``nn.Linear`` whose outputs are the labels (the classification layer)."""
    import torch

    num_labels = int(model.config.num_labels)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not linears:
        raise ValueError("model has no linear layer with one output per label")
    return linears[-1]
