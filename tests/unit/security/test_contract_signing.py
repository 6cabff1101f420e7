"""Contract signatures: canonical bytes, a pinned algorithm per key, rotation, distinct refusals."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from awooop.security.canonical_json import NotCanonicalizable, canonical_sha256
from awooop.security.contract_signing import ContractSignature, SignatureRefused, sign, verify
from awooop.security.signing_keys import (
    InvalidKey,
    KeyRing,
    SigningKey,
    VerifyingKey,
    generate_ed25519_keys,
    generate_hs256_key,
)

pytestmark = pytest.mark.unit

ALGS = ["EdDSA", "HS256"]
BODY: dict[str, Any] = {
    "family": "tool",
    "name": "crm.lookup",
    "revision": 3,
    "scopes": ["read"],
    "limits": {"calls_per_minute": 10, "ratio": 0.5, "enabled": True, "note": None},
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new(alg: str, kid: str) -> tuple[SigningKey, str]:
    """A signing key and its verifying spec, as an operator would configure them."""
    pair = generate_ed25519_keys(kid) if alg == "EdDSA" else generate_hs256_key(kid)
    return SigningKey.from_spec(pair.signing_spec), pair.verifying_spec


def _refusal(body: Any, signature: ContractSignature, ring: KeyRing) -> str:
    with pytest.raises(SignatureRefused) as refused:
        verify(body, signature, ring)
    assert isinstance(refused.value, ValueError)
    assert refused.value.reason
    assert str(refused.value).startswith(refused.value.code)
    return refused.value.code


@pytest.mark.parametrize("alg", ALGS)
def test_a_signed_body_verifies(alg: str) -> None:
    key, spec = _new(alg, "k1")
    signature = sign(BODY, key)
    assert (signature.kid, signature.alg) == ("k1", alg)
    assert signature.body_sha256 == canonical_sha256(BODY)
    verify(BODY, signature, KeyRing.from_spec(spec))
    verify(BODY, signature, KeyRing((key.verifying_key(),)))


@pytest.mark.parametrize("alg", ALGS)
def test_a_tampered_body_is_refused_by_its_digest(alg: str) -> None:
    key, spec = _new(alg, "k1")
    signature = sign(BODY, key)
    tampered = copy.deepcopy(BODY)
    tampered["limits"]["calls_per_minute"] = 1000
    assert _refusal(tampered, signature, KeyRing.from_spec(spec)) == "E-CONTRACT-SIG-DIGEST"


@pytest.mark.parametrize("alg", ALGS)
def test_another_key_under_the_same_kid_is_refused_as_bad(alg: str) -> None:
    key, _ = _new(alg, "k1")
    _, other_spec = _new(alg, "k1")
    ring = KeyRing.from_spec(other_spec)
    assert _refusal(BODY, sign(BODY, key), ring) == "E-CONTRACT-SIG-BAD"
    # The digest is checked first: a tampered body under the wrong key says so.
    assert _refusal({**BODY, "revision": 4}, sign(BODY, key), ring) == "E-CONTRACT-SIG-DIGEST"


@pytest.mark.parametrize("alg", ALGS)
def test_a_body_and_digest_rewritten_together_are_refused_as_bad(alg: str) -> None:
    key, spec = _new(alg, "k1")
    forged = {**BODY, "revision": 4}
    signature = dataclasses.replace(sign(BODY, key), body_sha256=canonical_sha256(forged))
    assert _refusal(forged, signature, KeyRing.from_spec(spec)) == "E-CONTRACT-SIG-BAD"


@pytest.mark.parametrize("alg", ALGS)
def test_an_unknown_kid_is_refused(alg: str) -> None:
    key, _ = _new(alg, "k9")
    _, spec = _new(alg, "k1")
    assert _refusal(BODY, sign(BODY, key), KeyRing.from_spec(spec)) == "E-CONTRACT-SIG-KID"


@pytest.mark.parametrize(("alg", "claimed"), [("EdDSA", "HS256"), ("HS256", "EdDSA")])
def test_a_signature_claiming_another_algorithm_is_refused(alg: str, claimed: str) -> None:
    key, spec = _new(alg, "k1")
    ring = KeyRing.from_spec(spec)
    relabelled = dataclasses.replace(sign(BODY, key), alg=claimed)
    assert _refusal(BODY, relabelled, ring) == "E-CONTRACT-SIG-ALG"
    for other in ("none", "RS256", "eddsa", ""):
        relabelled = dataclasses.replace(sign(BODY, key), alg=other)
        assert _refusal(BODY, relabelled, ring) == "E-CONTRACT-SIG-ALG"


def test_an_hmac_keyed_with_the_public_key_cannot_pass_for_ed25519() -> None:
    _, spec = _new("EdDSA", "k1")
    ring = KeyRing.from_spec(spec)
    public = ring.get("k1")
    assert public is not None
    assert isinstance(public.material, Ed25519PublicKey)
    confused = SigningKey("k1", "HS256", public.material.public_bytes_raw())
    assert _refusal(BODY, sign(BODY, confused), ring) == "E-CONTRACT-SIG-ALG"


@pytest.mark.parametrize("alg", ALGS)
def test_rotation_verifies_old_and_new_until_the_old_key_is_retired(alg: str) -> None:
    old, old_spec = _new(alg, "k1")
    new, new_spec = _new(alg, "k2")
    old_signature, new_signature = sign(BODY, old), sign(BODY, new)
    ring = KeyRing.from_spec(f"{new_spec},{old_spec}")
    verify(BODY, old_signature, ring)
    verify(BODY, new_signature, ring)
    retired = KeyRing.from_spec(f"{new_spec}, {old_spec}:retired")
    assert _refusal(BODY, old_signature, retired) == "E-CONTRACT-SIG-RETIRED"
    verify(BODY, new_signature, retired)


@pytest.mark.parametrize("alg", ALGS)
def test_key_order_and_whitespace_do_not_matter_but_numbers_do(alg: str) -> None:
    key, spec = _new(alg, "k1")
    ring = KeyRing.from_spec(spec)
    signature = sign(json.loads('{"a": 1, "b": [true, null], "c": {"y": "é", "x": 2.5}}'), key)
    verify(json.loads('{"c":{"x":2.5,"y":"\\u00e9"},\n  "b":[ true,null ],"a":1}'), signature, ring)
    # JSON has one number type: 1 and 1.0 are the same number, so the same bytes.
    verify({"a": 1.0, "b": [True, None], "c": {"y": "é", "x": 2.5}}, signature, ring)
    for changed in ('"1"', "true", "2", "1.5", "-1", "25e-1"):
        text = '{"a": %s, "b": [true, null], "c": {"y": "é", "x": 2.5}}' % changed  # noqa: UP031
        assert _refusal(json.loads(text), signature, ring) == "E-CONTRACT-SIG-DIGEST"
    moved = {"a": 1, "b": [True, None], "c": {"y": "é", "x": "2.5"}}
    assert _refusal(moved, signature, ring) == "E-CONTRACT-SIG-DIGEST"


@pytest.mark.parametrize(
    "spec",
    [
        "k1:HS256:" + _b64(b"s" * 31),
        "k1:HS256:",
    ],
)
def test_an_hs256_secret_under_32_bytes_is_refused(spec: str) -> None:
    with pytest.raises(InvalidKey, match="at least 32"):
        SigningKey.from_spec(spec)
    with pytest.raises(InvalidKey, match="at least 32"):
        KeyRing.from_spec(spec)
    with pytest.raises(InvalidKey, match="at least 32"):
        generate_hs256_key("k1", size=16)
    with pytest.raises(InvalidKey):
        SigningKey("k1", "HS256", b"s" * 31)
    assert SigningKey("k1", "HS256", b"s" * 32).alg == "HS256"


def test_an_ed25519_ring_holds_public_keys_only() -> None:
    pair = generate_ed25519_keys("k1")
    key = KeyRing.from_spec(pair.verifying_spec).get("k1")
    assert key is not None
    assert isinstance(key.material, Ed25519PublicKey)
    assert not isinstance(key.material, Ed25519PrivateKey | bytes)
    values = [getattr(key, f.name) for f in dataclasses.fields(key)]
    assert not any(isinstance(v, Ed25519PrivateKey | bytes) for v in values)
    with pytest.raises(InvalidKey):
        VerifyingKey("k1", "EdDSA", Ed25519PrivateKey.generate())  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ALGS)
def test_malformed_signatures_are_refused_as_malformed(alg: str) -> None:
    key, spec = _new(alg, "k1")
    ring = KeyRing.from_spec(spec)
    good = sign(BODY, key)
    for broken in (
        dataclasses.replace(good, signature=good.signature + "="),
        dataclasses.replace(good, signature=good.signature[:-2] + "+/"),
        dataclasses.replace(good, signature=good.signature[:-4]),
        dataclasses.replace(good, signature=""),
        dataclasses.replace(good, body_sha256=good.body_sha256.upper()),
        dataclasses.replace(good, kid="k1:x"),
        dataclasses.replace(good, kid=None),  # type: ignore[arg-type]
    ):
        assert _refusal(BODY, broken, ring) == "E-CONTRACT-SIG-MALFORMED"


def test_a_body_without_canonical_form_is_refused() -> None:
    key, spec = _new("EdDSA", "k1")
    signature = sign(BODY, key)
    bad = {**BODY, "ratio": float("nan")}
    assert _refusal(bad, signature, KeyRing.from_spec(spec)) == "E-CONTRACT-SIG-BODY"
    with pytest.raises(NotCanonicalizable):
        sign(bad, key)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("k1:EdDSA", "<kid>:<alg>:<base64url key>"),
        ("bad kid:EdDSA:" + _b64(bytes(32)), "key id"),
        ("k1:RS256:" + _b64(bytes(32)), "EdDSA or HS256"),
        ("k1:EdDSA:" + _b64(bytes(32)) + "=", "base64url"),
        ("k1:EdDSA:" + _b64(bytes(31)), "exactly 32"),
        ("k1:EdDSA:" + _b64(bytes(32)) + ":revoked", "<kid>:<alg>"),
    ],
)
def test_malformed_key_specs_are_refused(spec: str, why: str) -> None:
    with pytest.raises(InvalidKey, match=why):
        KeyRing.from_spec(spec)


def test_key_specs_name_no_key_bytes_and_a_signer_cannot_be_retired() -> None:
    pair = generate_hs256_key("k1")
    secret_text = pair.signing_spec.split(":")[2]
    with pytest.raises(InvalidKey) as refused:
        SigningKey.from_spec(pair.signing_spec + ":retired")
    assert secret_text not in str(refused.value)
    key = SigningKey.from_spec(pair.signing_spec)
    assert secret_text not in repr(key)
    assert secret_text not in repr(pair)
    assert secret_text not in repr(KeyRing.from_spec(pair.verifying_spec))
    assert pair.verifying_spec == pair.signing_spec


def test_rings_refuse_duplicate_kids_and_having_no_live_key() -> None:
    _, one = _new("EdDSA", "k1")
    _, two = _new("HS256", "k1")
    with pytest.raises(InvalidKey, match="twice"):
        KeyRing.from_spec(f"{one},{two}")
    with pytest.raises(InvalidKey, match="not retired"):
        KeyRing.from_spec(f"{one}:retired")
    with pytest.raises(InvalidKey):
        KeyRing.from_spec("")


def test_one_ring_may_mix_algorithms_each_pinned_to_its_key() -> None:
    ed, ed_spec = _new("EdDSA", "ed")
    hs, hs_spec = _new("HS256", "hs")
    ring = KeyRing.from_spec(f"{ed_spec},{hs_spec}")
    verify(BODY, sign(BODY, ed), ring)
    verify(BODY, sign(BODY, hs), ring)
    swapped = dataclasses.replace(sign(BODY, ed), kid="hs", alg="HS256")
    assert _refusal(BODY, swapped, ring) == "E-CONTRACT-SIG-MALFORMED"


_LEAVES = st.none() | st.booleans() | st.integers(-(2**53) + 2, 2**53 - 2) | st.text(max_size=8)
_DOCUMENTS = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        _LEAVES,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=12,
    ),
    max_size=6,
)
_KEYS = {alg: _new(alg, "k1") for alg in ALGS}


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*path, i))]
    return [path]


def _changed(leaf: Any) -> Any:
    if leaf is None or isinstance(leaf, bool):
        return {None: 0, True: False, False: True}[leaf]
    if isinstance(leaf, int):
        return leaf + 1
    return leaf + "x"


@pytest.mark.parametrize("alg", ALGS)
@given(document=_DOCUMENTS, data=st.data())
def test_any_document_verifies_and_any_changed_leaf_is_refused(
    alg: str, document: dict[str, Any], data: st.DataObject
) -> None:
    key, spec = _KEYS[alg]
    ring = KeyRing.from_spec(spec)
    signature = sign(document, key)
    verify(copy.deepcopy(document), signature, ring)
    paths = [p for p in _leaf_paths(document) if p]
    if not paths:
        return
    path = data.draw(st.sampled_from(paths))
    tampered = copy.deepcopy(document)
    holder = tampered
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = _changed(holder[path[-1]])
    assert _refusal(tampered, signature, ring) == "E-CONTRACT-SIG-DIGEST"
