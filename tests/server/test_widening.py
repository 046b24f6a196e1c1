"""The ServerApp's side of the masked update's record: uint32 arrays in, Flower's int64 blobs out,
and a malformed upload counted as not received rather than crashing the round."""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, Metadata, RecordDict
from flwr.common import bytes_to_ndarray, ndarray_to_bytes
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from edge_agent.federation.client_app import _narrowed
from genba.masking import MASKED_RECORD
from server.strategy import WideningGrid


def _reply(content: RecordDict, node: int = 11) -> Message:
    metadata = Metadata(run_id=1, message_id="", src_node_id=node, dst_node_id=1, reply_to_message_id="m1",
                        group_id="1", created_at=0.0, ttl=600.0, message_type="train")  # fmt: skip
    return Message(content, metadata=metadata)


class _Grid:
    def __init__(self, replies: list[Message]) -> None:
        self.replies = replies

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Message]:
        return self.replies


def test_a_sites_masked_update_reaches_flowers_workflow_as_the_int64_blobs_it_masked() -> None:
    rng = np.random.default_rng(3)
    masked = [np.array([7], dtype=np.int64), rng.integers(0, 2**32, size=(4, 5), dtype=np.int64)]
    sent = _narrowed(_reply(RecordDict({RECORD_KEY_CONFIGS: ConfigRecord(
        {Key.MASKED_PARAMETERS: [ndarray_to_bytes(a) for a in masked]}
    )})))  # fmt: skip
    # What leaves the site: uint32 arrays in their own record, nothing in SecAgg+'s ConfigRecord.
    assert dict(sent.content.config_records[RECORD_KEY_CONFIGS]) == {}
    assert [sent.content.array_records[MASKED_RECORD][k].numpy().dtype for k in ("0", "1")] == [np.uint32] * 2

    (received,) = WideningGrid(_Grid([sent])).send_and_receive([])
    blobs = received.content.config_records[RECORD_KEY_CONFIGS][Key.MASKED_PARAMETERS]
    assert MASKED_RECORD not in received.content.array_records
    got = [bytes_to_ndarray(blob) for blob in blobs]
    assert all(a.dtype == np.int64 for a in got)
    assert all(np.array_equal(a, b) for a, b in zip(got, masked, strict=True))


def test_widening_leaves_a_record_the_inflated_message_shares_with_another_unchanged() -> None:
    # An inflated message holds one object for records of equal content: SecAgg+'s emptied
    # ConfigRecord and a site's empty metrics are the same object on the server.
    shared = ConfigRecord({})
    content = RecordDict({RECORD_KEY_CONFIGS: shared, "fitres.metrics": shared,
                          MASKED_RECORD: ArrayRecord([np.array([5], dtype=np.uint32)])})  # fmt: skip
    (received,) = WideningGrid(_Grid([_reply(content)])).send_and_receive([])
    assert dict(received.content.config_records["fitres.metrics"]) == {}
    assert len(received.content.config_records[RECORD_KEY_CONFIGS][Key.MASKED_PARAMETERS]) == 1


def test_a_malformed_masked_update_is_counted_as_not_received() -> None:
    def upload(record: ArrayRecord, node: int) -> Message:
        return _reply(RecordDict({RECORD_KEY_CONFIGS: ConfigRecord({}), MASKED_RECORD: record}), node)

    good = upload(ArrayRecord([np.array([1, 2], dtype=np.uint32)]), 11)
    wrong_dtype = upload(ArrayRecord([np.array([1.5, 2.0])]), 12)
    wrong_names = upload(ArrayRecord({"weights": Array(np.array([1], dtype=np.uint32))}), 13)
    junk = Array(dtype="uint32", shape=(2,), stype="numpy.ndarray", data=b"xx")
    garbage = upload(ArrayRecord({"0": junk}), 14)
    replies = WideningGrid(_Grid([good, wrong_dtype, wrong_names, garbage])).send_and_receive([])
    assert [reply.metadata.src_node_id for reply in replies] == [11]
