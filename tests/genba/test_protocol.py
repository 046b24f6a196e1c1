"""genba.protocol: the reply shapes observed on Flower's SecAgg+ path pass; anything more is refused."""

from __future__ import annotations

from typing import Any

import pytest

from genba.protocol import ProtocolViolation, check_outgoing, payload_bytes

STATUS = {"code": 0, "message": "Success"}
# As a real SuperNode's ClientApp sent them (Flower 1.42, legacy SecAgg+, 3 sites), values filled in.
REPLIES: dict[str, dict[str, dict[str, Any]]] = {
    "secagg_public_keys": {"secaggplus_configs": {"pk1": b"k" * 215, "pk2": b"k" * 215}},
    "secagg_key_shares": {"secaggplus_configs": {"dsts": [11, 12], "ctxts": [b"c" * 612, b"c" * 612]}},
    "masked_update": {
        "fitres.metrics": {"accuracy": 0.82, "production_version": 3},
        "fitres.num_examples": {"num_examples": 120},
        "fitres.parameters": {},
        "fitres.status": STATUS,
        "secaggplus_configs": {},
        "secaggplus_masked": {"0": b"m" * 136, "1": b"m" * 136},
    },
    "secagg_unmask_shares": {"secaggplus_configs": {"nids": [11, 12, 13], "shares": [b"s" * 52] * 3}},
    "evaluation": {
        "evaluateres.loss": {"loss": 0.41},
        "evaluateres.num_examples": {"num_examples": 90},
        "evaluateres.metrics": {"accuracy": 0.8},
        "evaluateres.status": STATUS,
    },
}


@pytest.mark.parametrize("kind", sorted(REPLIES))
def test_every_secagg_stage_and_the_evaluation_reply_are_allowed(kind: str) -> None:
    assert check_outgoing(REPLIES[kind]) == kind


def _with(kind: str, record: str, **fields: Any) -> dict[str, dict[str, Any]]:
    reply = {name: dict(values) for name, values in REPLIES[kind].items()}
    reply.setdefault(record, {}).update(fields)
    return reply


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (
            _with("masked_update", "fitres.metrics", last_report="scratch on housing 4711"),
            "metric 'last_report'",
        ),
        (_with("evaluation", "evaluateres.metrics", accuracy="0.8"), "must be float"),
        (_with("masked_update", "fitres.status", message="failed on 'dent near rim'"), "only report success"),
        (
            _with("masked_update", "fitres.parameters", **{"0": b"plain update"}),
            "unexpected or missing fields",
        ),
        (_with("secagg_public_keys", "secaggplus_configs", note=b"x"), "unexpected or missing fields"),
        (_with("secagg_key_shares", "secaggplus_configs", ctxts=["text"]), "must be list[bytes]"),
        (_with("evaluation", "evaluateres.num_examples", num_examples=True), "must be int"),
        ({**REPLIES["evaluation"], "site.data": {"text": "scratch"}}, "matches no allowed shape"),
        ({"fitres.parameters": {"0": b"x"}}, "matches no allowed shape"),
    ],
)
def test_anything_beyond_the_allowed_shapes_is_refused(reply: dict[str, dict[str, Any]], words: str) -> None:
    with pytest.raises(ProtocolViolation) as caught:
        check_outgoing(reply)
    assert words in str(caught.value) and "nothing was sent" in str(caught.value)


def test_payload_bytes_counts_what_the_message_carries() -> None:
    assert payload_bytes(REPLIES["secagg_public_keys"]) == 430
    assert payload_bytes(REPLIES["evaluation"]) == 8 + 8 + 8 + 8 + len("Success")


def test_an_unmasked_update_leaves_only_from_a_site_joined_for_a_benchmark() -> None:
    plain = {
        "fitres.parameters": {"0": b"\x00" * 16, "1": b"\x00" * 8},
        "fitres.num_examples": {"num_examples": 1},
        "fitres.metrics": {},
        "fitres.status": {"code": 0, "message": "Success"},
    }
    with pytest.raises(ProtocolViolation, match="matches no allowed shape"):
        check_outgoing(plain)
    assert check_outgoing(plain, allow_unmasked=True) == "unmasked_update"
    with pytest.raises(ProtocolViolation, match="must be bytes"):
        check_outgoing({**plain, "fitres.parameters": {"0": "a report's text"}}, allow_unmasked=True)


def test_a_bundle_receipt_carries_two_numbers_and_nothing_else() -> None:
    assert check_outgoing({"bundle_receipt": {"version": 2, "outcome": 0}}) == "bundle_receipt"
    with pytest.raises(ProtocolViolation):
        check_outgoing({"bundle_receipt": {"version": 2, "outcome": 0, "reason": "signature invalid"}})
    with pytest.raises(ProtocolViolation, match="must be int"):
        check_outgoing({"bundle_receipt": {"version": 2, "outcome": "refused"}})


def test_an_error_reply_carries_only_a_code_from_the_table_with_its_fixed_reason() -> None:
    from genba.protocol import ERROR_REASONS, check_error, error_content

    for code, reason in ERROR_REASONS.items():
        assert check_error(code, reason) == "error"
        assert error_content(code) == {"error": {"code": code, "reason": reason}}
        assert payload_bytes(error_content(code)) == 8 + len(reason.encode())
    some_code = next(iter(ERROR_REASONS))
    for code, reason in (
        (some_code, "<class 'KeyError'>:<'scratch on housing lot 4711'>"),  # Flower's own error text
        (some_code, ERROR_REASONS[some_code] + " "),
        (2, "ClientApp raised an exception"),  # Flower's code for an exception in the ClientApp
        (True, ERROR_REASONS.get(1, "")),
    ):
        with pytest.raises(ProtocolViolation, match="only a code from genba.protocol.ERROR_REASONS"):
            check_error(code, reason)


def test_the_canonical_form_tells_apart_exactly_what_differs() -> None:
    from genba.protocol import canonical_bytes, content_sha256

    reply = REPLIES["masked_update"]
    reordered = {name: dict(reversed(list(fields.items()))) for name, fields in reversed(list(reply.items()))}
    assert canonical_bytes(reordered) == canonical_bytes(reply)  # insertion order does not matter
    variants = [
        {"r": {"v": 1}}, {"r": {"v": 1.0}}, {"r": {"v": True}}, {"r": {"v": "1"}}, {"r": {"v": b"1"}},
        {"r": {"v": [1]}}, {"r": {"v": [b"1"]}}, {"r": {"w": 1}}, {"s": {"v": 1}}, {"r": {"v": 1}, "s": {}},
        {"r": {"v": b"ab", "w": b""}}, {"r": {"v": b"a", "w": b"b"}}, {"r": {"v": 2**64 - 1}},
    ]  # fmt: skip
    hashes = {content_sha256(v) for v in variants}
    assert len(hashes) == len(variants) and all(len(h) == 64 for h in hashes)
    # Pinned: a change to the spelling would make old ledgers incomparable with what servers kept.
    assert content_sha256({"error": {"code": 4500, "reason": "x"}}) == (
        "fb58e29ad9427e035d2efcbea6a3f1cf68b3fe59fa8cccb90e8f2c2886d66ddd"
    )
    with pytest.raises(ProtocolViolation, match="has no canonical form"):
        canonical_bytes({"r": {"v": {"nested": 1}}})
