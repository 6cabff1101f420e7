"""RFC 8785 canonical JSON: key order by UTF-16 code units, ECMAScript numbers, no whitespace."""

from __future__ import annotations

import hashlib
import json

import pytest

from awooop.security.canonical_json import NotCanonicalizable, canonical_json, canonical_sha256

pytestmark = pytest.mark.unit


def test_keys_sort_by_utf16_code_units_not_by_code_points() -> None:
    # RFC 8785 §3.2.3: U+1F600 is the surrogate pair D83D DE00, which sorts
    # before U+FB33 although its code point is larger.
    document = {"\ufb33": "hebrew", "\U0001f600": "emoji", "\r": "cr", "1": "one", "a": 1}
    assert canonical_json(document) == (
        '{"\\r":"cr","1":"one","a":1,"\U0001f600":"emoji","\ufb33":"hebrew"}'.encode()
    )


def test_the_rfc_8785_number_examples() -> None:
    numbers = [1e21, 1e-7, 0.000001, 4.5, 2e-3, 1e30, -0.0, 333333333.3333333, 1.0]
    assert canonical_json(numbers) == (
        b"[1e+21,1e-7,0.000001,4.5,0.002,1e+30,0,333333333.3333333,1]"
    )


def test_the_rfc_8785_sample_document() -> None:
    text = """{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]
    }"""
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(json.loads(text)) == expected


def test_no_whitespace_and_utf8_strings() -> None:
    assert (
        canonical_json({"b": [1, {"c": None}], "a": "é"}) == '{"a":"é","b":[1,{"c":null}]}'.encode()
    )


def test_the_digest_is_the_sha256_of_the_canonical_bytes() -> None:
    document = {"z": 1, "a": [True, "x"]}
    assert canonical_sha256(document) == hashlib.sha256(b'{"a":[true,"x"],"z":1}').hexdigest()
    assert canonical_sha256(json.loads('{ "a" : [true, "x"],\n "z": 1.0 }')) == canonical_sha256(
        document
    )


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"x": float("nan")}, "nan"),
        ({"x": float("inf")}, "inf"),
        ([float("-inf")], "inf"),
        ({1: "one"}, "keys must be strings"),
        ({"x": 2**53}, "safe integer"),
        ({"x": b"bytes"}, "unsupported type"),
        ({"x": {1, 2}}, "unsupported type"),
        ("\ud800", "non-UTF-8"),
    ],
)
def test_what_jcs_cannot_encode_is_refused(document: object, why: str) -> None:
    with pytest.raises(NotCanonicalizable, match=why) as refused:
        canonical_json(document)
    assert isinstance(refused.value, ValueError)
    with pytest.raises(NotCanonicalizable):
        canonical_sha256(document)
