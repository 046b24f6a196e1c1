"""Bad pictures, bad batch items and every error path of a real image agent: one JSON shape, one line."""

from __future__ import annotations

import base64
import io
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from edge_agent.config import IMAGE_BYTES_CEILING, ApiConfig
from edge_agent.site import SiteFolder
from genba.errors import ConfigError

LABELS = ("ok", "crack")


@pytest.fixture(scope="module")
def cnn_bundle(keypair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from export import ImagePreprocessing, from_torch

    class Cnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
            self.out = torch.nn.Linear(4, len(LABELS))

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.out(torch.relu(self.conv(pixel_values)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    return from_torch(
        Cnn().eval(),
        {"pixel_values": torch.randn(1, 3, 16, 16)},
        tmp_path_factory.mktemp("image-agent") / "cnn",
        task="image-classification",
        preprocessing=ImagePreprocessing(16, 16, mean=(0.5,) * 3, std=(0.25,) * 3),
        labels=LABELS,
        signing_key=keypair[0],
    ).bundle


@pytest.fixture
def image_agent(
    make_site: Callable[..., SiteFolder],
    agent_process: Callable[..., Any],
    cnn_bundle: Path,
    agent_harness: Any,
) -> Iterator[Callable[..., tuple[Any, Callable[[str], httpx.Client]]]]:
    """A real agent serving the CNN; ``clients(role)`` gives an httpx client with that role's token."""
    opened: list[httpx.Client] = []

    def start(api: dict[str, Any] | None = None) -> tuple[Any, Callable[[str], httpx.Client]]:
        settings = {**agent_harness.TEST_SETTINGS, "gates": {"auto_advance": False}, "api": api or {}}
        site = make_site(settings=settings)
        agent = agent_process(site)
        with agent.client() as client:
            client.install(cnn_bundle)

        def clients(role: str) -> httpx.Client:
            headers = {"Authorization": f"Bearer {site.read_token(role)}"} if role != "nobody" else {}
            client = httpx.Client(base_url=agent.url, headers=headers, timeout=60)
            opened.append(client)
            return client

        return agent, clients

    yield start
    for client in opened:
        client.close()


def _png(size: tuple[int, int] = (40, 30), seed: int = 0) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def _many_pixels(size: tuple[int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", size).save(out, format="PNG")  # 1 bit a pixel: a small file of many pixels
    return out.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _one_error(response: httpx.Response) -> tuple[int, str, str]:
    """The status, code and message of an error answer, after checking it has the one shape."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    code, message = body["error"]["code"], body["error"]["message"]
    assert isinstance(code, str) and code and isinstance(message, str) and message, body
    assert "\n" not in message and "Traceback" not in message, message
    return response.status_code, code, message


def test_bad_pictures_are_answered_in_the_error_shape_saying_what_is_wrong(image_agent: Any) -> None:
    _, clients = image_agent()
    integration = clients("integration")
    good = _png()
    assert integration.post("/v1/predict", json={"image": _b64(good)}).json()["label"] in LABELS
    cases = [
        (good[: len(good) // 2], 400, "input_file", "the image cannot be decoded (image file is truncated"),
        (
            good[:200] + bytes(b ^ 0xFF for b in good[200:400]) + good[400:],
            400,
            "input_file",
            "cannot be decoded",
        ),
        (_many_pixels((15000, 15000)), 413, "image_too_large", "the image is too large (225,000,000 pixels"),
        (_many_pixels((7000, 7000)), 413, "image_too_large", "the image is too large (7000x7000 pixels"),
    ]
    for picture, status, code, words in cases:
        answer = _one_error(integration.post("/v1/predict", json={"image": _b64(picture)}))
        assert answer[:2] == (status, code) and words in answer[2], answer
        assert "send a" in answer[2]  # says what to do


def test_one_bad_item_of_a_batch_is_named_by_its_index(image_agent: Any) -> None:
    _, clients = image_agent()
    operator = clients("operator")
    good = _b64(_png())

    def batch(bad: str, at: int) -> tuple[int, str, str]:
        items = [{"image": good} for _ in range(4)]
        items[at] = {"image": bad}
        return _one_error(operator.post("/v1/predict/batch", json={"items": items}))

    status, _, message = batch(_b64(_png()[:300]), 2)
    assert status == 400 and message.startswith("items[2]: the image cannot be decoded"), message
    status, code, message = batch(_b64(_many_pixels((15000, 15000))), 1)
    assert (status, code) == (413, "image_too_large") and message.startswith(
        "items[1]: the image is too large"
    )
    status, _, message = batch("not base64!", 3)
    assert status == 400 and message == "items[3]: 'image' is not valid base64", message
    status, _, message = batch("", 0)  # refused by the schema: named by its place too
    assert status == 422 and message.startswith("items.0.image"), message
    answers = operator.post("/v1/predict/batch", json={"items": [{"image": good}] * 3})
    assert answers.status_code == 200 and len(answers.json()["items"]) == 3


def test_the_body_limit_takes_the_largest_image_the_schema_takes(image_agent: Any) -> None:
    """An image file just under 1,500,000 bytes (2,000,000 base64 characters) is answered by default."""
    agent, clients = image_agent()
    picture = _png((700, 700))  # random pixels barely compress
    assert 1_400_000 < len(picture) < IMAGE_BYTES_CEILING
    answer = clients("operator").post("/v1/predict", json={"image": _b64(picture)})
    assert answer.status_code == 200, answer.text
    from edge_agent.service import schemas

    assert schemas.api.IMAGE_BASE64_CHARS == IMAGE_BYTES_CEILING * 4 // 3 == 2_000_000
    assert ApiConfig().image_bytes_limit == IMAGE_BYTES_CEILING
    assert ApiConfig().max_request_bytes >= len(_b64(picture)) + 100


def test_a_site_limit_on_image_files_is_answered_with_413_naming_it(image_agent: Any) -> None:
    _, clients = image_agent({"max_image_bytes": 20_000})
    picture = _png((100, 100))
    assert len(picture) > 20_000
    status, code, message = _one_error(clients("operator").post("/v1/predict", json={"image": _b64(picture)}))
    assert (status, code) == (413, "image_too_large"), message
    assert (
        f"the image is too large ({len(picture):,} bytes; this site takes image files up to 20,000" in message
    )


def test_image_limits_that_do_not_fit_the_body_limit_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        ApiConfig(max_request_bytes=1 << 20, max_image_bytes=1_000_000)
    message = str(caught.value)
    assert "api.max_image_bytes (1000000) does not fit api.max_request_bytes (1048576)" in message
    assert "at least 1341526" in message
    with pytest.raises(ConfigError, match="between 0"):
        ApiConfig(max_image_bytes=IMAGE_BYTES_CEILING + 1)
    # an older site's 1 MiB limit still starts, and takes the images its requests can hold
    assert ApiConfig(max_request_bytes=1 << 20).image_bytes_limit == (1048576 - 8192) * 3 // 4


def test_the_integration_role_is_told_it_may_not_ask_for_explanations(image_agent: Any) -> None:
    _, clients = image_agent()
    answer = clients("operator").post("/v1/predict", json={"image": _b64(_png())}).json()
    path = f"/v1/inputs/{answer['input_id']}/explanation"
    status, code, message = _one_error(clients("integration").get(path))
    assert (status, code) == (403, "permission_denied")
    assert message.startswith("the integration role may not ask why the model answered as it did"), message
    assert "label" not in message
    assert clients("operator").get(path).status_code == 200


def test_every_error_the_api_can_give_has_the_one_shape(image_agent: Any) -> None:
    agent, clients = image_agent({"max_request_bytes": 64 * 1024})
    operator = clients("operator")
    # A damaged row in the store makes a read fail in a way nobody planned for: a 500.
    with sqlite3.connect(agent.site.store_file) as conn:
        conn.execute(
            "INSERT INTO stage_decisions (model_id, from_stage, to_stage, actor, outcome, gates, created_at) "
            "VALUES (1, 'shadow', 'pilot', 'gates', 'hold', '{\"RAW-INPUT-7f3a', 0)"
        )
    paths = [
        (operator.get("/v1/nothing-here"), 404, "not_found", "no such route: GET /v1/nothing-here"),
        (operator.delete("/v1/predict"), 405, "method_not_allowed", "DELETE /v1/predict is not allowed"),
        (
            operator.post("/v1/predict", json={"image": "A" * 70_000}),
            413,
            "payload_too_large",
            "over 65536 bytes",
        ),
        (
            operator.post("/v1/predict", json={"image": "AAAA", "colour": "red"}),
            422,
            "invalid_request",
            "colour",
        ),
        (operator.get("/v1/queue", params={"limit": 0}), 422, "invalid_request", "limit"),
        (operator.get("/v1/gates"), 500, "internal_error", "failed unexpectedly answering GET /v1/gates"),
        (clients("nobody").get("/v1/status"), 401, "authentication", "missing token"),
        (operator.post("/v1/models/promote", json={}), 403, "permission_denied", "operator role may not"),
        (clients("supervisor").post("/v1/models/promote", json={}), 409, "rollout", "no candidate"),
        (operator.post("/v1/labels", json={"input_id": 99_999, "label": "ok"}), 404, "unknown_item", "99999"),
    ]
    for response, status, code, words in paths:
        answer = _one_error(response)
        assert answer[:2] == (status, code) and words in answer[2], (status, answer)
    assert paths[1][0].headers["allow"] == "POST"
    leaked = paths[5][0].text
    assert "RAW-INPUT" not in leaked and "JSONDecodeError" in leaked and "line 1" not in leaked
