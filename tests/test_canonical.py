"""Canonical JSON must be exactly RFC 8785 (checked against the reference encoder)."""

from __future__ import annotations

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from nbgov import canonical
from nbgov.errors import InvalidPayload

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_encoding_equals_the_rfc8785_reference(value: object) -> None:
    assert canonical.encode(value) == rfc8785.dumps(value)


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float(value: float) -> None:
    assert canonical.encode({"x": value}) == rfc8785.dumps({"x": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        (1.0, b"1"),
        (-0.0, b"0"),
        (1e-7, b"1e-7"),
        (1e21, b"1e+21"),
        (1e16, b"10000000000000000"),
        (0.1, b"0.1"),
        ("\u2028\n\x00\"", b'"\xe2\x80\xa8\\n\\u0000\\""'),
        # UTF-16 key order: U+E000 sorts after the surrogate pair of U+1F600.
        ({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'.encode()),
    ],
)
def test_known_answers(value: object, expected: bytes) -> None:
    assert canonical.encode(value) == expected


def test_numpy_scalars_and_tuples_are_plain_json() -> None:
    np = pytest.importorskip("numpy")
    value = {"a": np.int64(3), "b": np.float64(0.5), "c": np.float32(2.0), "d": (1, 2), "e": np.bool_(True)}
    assert canonical.encode(value) == b'{"a":3,"b":0.5,"c":2,"d":[1,2],"e":true}'


@pytest.mark.parametrize(
    ("value", "path_fragment", "problem"),
    [
        ({"x": math.nan}, "['x']", "not a JSON number"),
        ({"x": [1, math.inf]}, "['x'][1]", "not a JSON number"),
        ({"x": 2**60}, "['x']", "outside"),
        ({1: "a"}, "[1]", "keys must be strings"),
        ({"x": object()}, "['x']", "is not JSON"),
        ({"x": "\ud800"}, "['x']", "lone surrogate"),
        ({"x": {1, 2}}, "['x']", "is not JSON"),
    ],
)
def test_values_json_cannot_carry_are_refused_with_their_path(
    value: object, path_fragment: str, problem: str
) -> None:
    with pytest.raises(InvalidPayload) as info:
        canonical.encode(value)
    assert path_fragment in info.value.path
    assert problem in info.value.problem
