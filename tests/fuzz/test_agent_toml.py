"""Fuzz loading ``agent.toml`` (``edge_agent.config.load_agent_config``).

Starts from the file ``genba agent init`` writes: settings changed in type and value, sections
replaced by values, unknown keys, changed bytes, random bytes.
"""

from __future__ import annotations

import datetime
import math
import tomllib
from typing import Any

import genba_fuzzing as fuzzing
import pytest
import tomli_w
from hypothesis import strategies as st

from edge_agent.config import default_toml, load_agent_config
from genba.errors import ConfigError

TOML_SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from((datetime.date(2026, 1, 1), datetime.time(5, 10), math.nan, "", "0.0.0.0", "gpu"))
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=5,
)


def _default() -> dict[str, Any]:
    return tomllib.loads(default_toml("fuzz-site"))


@st.composite
def _changed_document(draw: st.DrawFn) -> bytes:
    document = _default()
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(document)) | st.text(min_size=1, max_size=8))
        current = document.get(section)
        if isinstance(current, dict) and current and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(current)) | st.text(min_size=1, max_size=8))
            current[key] = draw(TOML_VALUES)
        else:
            document[section] = draw(TOML_VALUES)
    return tomli_w.dumps(document).encode()


def _inputs() -> st.SearchStrategy[bytes]:
    valid = default_toml("fuzz-site").encode()
    return st.one_of(_changed_document(), fuzzing.mutated_bytes(valid), st.binary(max_size=256))


def check(raw: bytes) -> None:
    with fuzzing.sandbox() as folder:
        path = folder / "agent.toml"
        path.write_bytes(raw)
        fuzzing.expect_typed(lambda: load_agent_config(path), "load_agent_config")


TARGET = fuzzing.Target("agent_toml", _inputs(), check)


def test_loading_agent_toml_answers_every_input_with_a_typed_error_or_a_config() -> None:
    fuzzing.check_target(TARGET)


# ---------------------------------------------------------------------------- found by fuzzing


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(
            b"api = [2.5e16, true]\n", "[api] must be a table of settings, not list", id="was TypeError"
        ),
        pytest.param(b'api = ["0.0.0.0", 1, true]\n', "[api] must be a table", id="was ValueError"),
        pytest.param(
            b'runtime = "cpu"\n', "[runtime] must be a table of settings, not str", id="was ValueError (str)"
        ),
        pytest.param(b"shadow_queue = inf\n", "cannot convert float infinity", id="was OverflowError"),
        pytest.param(
            b"[costs]\ncurrency = true\n",
            'costs.currency must be text such as "EUR", not bool',
            id="was AttributeError",
        ),
        pytest.param(b'[batching]\n"a\\nb" = 1\n', "unknown setting batching.'a\\nb'", id="was two lines"),
    ],
)
def test_a_setting_of_the_wrong_shape_is_named_on_one_line(raw: bytes, problem: str) -> None:
    check(raw)
    with fuzzing.sandbox() as folder:
        (folder / "agent.toml").write_bytes(raw)
        with pytest.raises(ConfigError) as caught:
            load_agent_config(folder / "agent.toml")
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_the_unchanged_file_loads() -> None:
    """The fuzzing starts from the file ``genba agent init`` writes, which loads."""
    with fuzzing.sandbox() as folder:
        (folder / "agent.toml").write_text(default_toml("fuzz-site"))
        assert load_agent_config(folder / "agent.toml").site == "fuzz-site"
