"""The canonical form's fast path (orjson) writes exactly the bytes of its definition
(json.dumps, sorted keys, compact, UTF-8): every stored hash depends on it."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ladder_tracker.canonical import canonical_json


def reference(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# Any text (control characters, every plane, lone surrogates too), ints past 64 bits,
# floats: whatever a snapshot could hold.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.characters(codec=None).map(lambda c: c * 3)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_fast_path_writes_the_definitions_bytes(value):
    assert outcome(canonical_json, value) == outcome(reference, value)


def outcome(dump, value):
    """The bytes, or the refusal: a lone surrogate is not UTF-8, and both ways refuse it."""
    try:
        return dump(value)
    except UnicodeEncodeError:
        return UnicodeEncodeError


def test_the_tricky_cases_by_name():
    for value in [
        {"b": 1, "a": "\u2028\u2029", "\x00": "\x1f\x7f", "é": "ß"},
        {"z": [1.0, 1e16, -0.0, 2**70], "A": None, "a": True},
        {"\U0001f600": "x", "\uffff": "y"},  # keys past the BMP sort by code point
        ["tab\tand\nnewline", '"quoted"', "back\\slash", "</script>"],
    ]:
        assert canonical_json(value) == reference(value)


def test_a_lone_surrogate_is_refused_as_before():
    with pytest.raises(UnicodeEncodeError):
        reference({"a": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"a": "\ud800"})
