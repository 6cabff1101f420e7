"""Signatures over contract bodies: :func:`sign`, :func:`verify` and their refusals.

The keys, their specs and rotation live in :mod:`awooop.security.signing_keys`.
The signed bytes are exactly :func:`canonical_json` of the body, so key order
and whitespace never matter and any changed value does. The ``alg`` a signature
claims is compared with its key's pinned one and never picks anything.
:func:`verify` refuses, in this order: malformed fields, an unknown kid, a
retired key, another algorithm, signature bytes of the wrong length for it, a
body with no canonical form, a body whose SHA-256 differs from the signed one
(a tampered body), then a signature that does not verify (wrong key or forged).
The digest is an aid to diagnosis, not a second lock: whoever rewrites body and
digest together still meets ``E-CONTRACT-SIG-BAD``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from awooop.contracts.registries.errors import ERROR_CODES
from awooop.security.canonical_json import NotCanonicalizable, canonical_json
from awooop.security.signing_keys import (
    KID_PATTERN,
    KID_RE,
    KeyRing,
    SigningKey,
    b64url_decode,
    b64url_encode,
)

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_BYTES = {"EdDSA": 64, "HS256": 32}


class SignatureRefused(ValueError):
    """A contract signature that must not be honoured, with `code` and a `reason` safe to show.

    Codes: ``E-CONTRACT-SIG-`` then ``MALFORMED``, ``KID``, ``RETIRED``, ``ALG``,
    ``BODY``, ``DIGEST`` or ``BAD`` (the order :func:`verify` checks them in).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ContractSignature:
    """Who signed (kid, alg), what (SHA-256 hex of the canonical body), and the base64url bytes."""

    kid: str
    alg: str
    body_sha256: str
    signature: str


def sign(body: dict[str, Any], key: SigningKey) -> ContractSignature:
    """Sign ``canonical_json(body)`` with `key`; NotCanonicalizable if it has no canonical form."""
    message = canonical_json(body)
    material = key.material
    if isinstance(material, Ed25519PrivateKey):
        raw = material.sign(message)
    else:
        raw = hmac.digest(material, message, hashlib.sha256)
    digest = hashlib.sha256(message).hexdigest()
    return ContractSignature(key.kid, key.alg, digest, b64url_encode(raw))


def verify(body: dict[str, Any], signature: ContractSignature, ring: KeyRing) -> None:
    """Return if `signature` by a live key of `ring` covers `body`; else raise SignatureRefused."""
    fields = (signature.kid, signature.alg, signature.body_sha256, signature.signature)
    raw = b64url_decode(signature.signature) if isinstance(signature.signature, str) else None
    if not all(isinstance(value, str) for value in fields) or raw is None:
        _refuse("MALFORMED", "kid, alg, body_sha256 and a base64url signature are required")
    if not KID_RE.fullmatch(signature.kid) or not _SHA256_HEX.fullmatch(signature.body_sha256):
        _refuse("MALFORMED", f"kid must match {KID_PATTERN}, body_sha256 be 64 lowercase hex")
    key = ring.get(signature.kid)
    if key is None:
        _refuse("KID", f"no verifying key {signature.kid!r}")
    if key.retired:
        _refuse("RETIRED", f"key {key.kid!r} is retired")
    if signature.alg != key.alg:
        _refuse("ALG", f"key {key.kid!r} verifies {key.alg} only, not {signature.alg[:16]!r}")
    if len(raw) != _SIGNATURE_BYTES[key.alg]:
        _refuse("MALFORMED", f"a {key.alg} signature has {_SIGNATURE_BYTES[key.alg]} bytes")
    try:
        message = canonical_json(body)
    except NotCanonicalizable as error:
        _refuse("BODY", str(error))
    if not hmac.compare_digest(hashlib.sha256(message).hexdigest(), signature.body_sha256):
        _refuse("DIGEST", "the body does not hash to the signed body_sha256")
    if not _signature_holds(key.material, message, raw):
        _refuse("BAD", f"the signature does not verify under key {key.kid!r}")


def _signature_holds(material: Ed25519PublicKey | bytes, message: bytes, raw: bytes) -> bool:
    if isinstance(material, Ed25519PublicKey):
        try:
            material.verify(raw, message)
        except InvalidSignature:
            return False
        return True
    return hmac.compare_digest(raw, hmac.digest(material, message, hashlib.sha256))


def _refuse(suffix: str, reason: str) -> NoReturn:
    registered = ERROR_CODES[f"E-CONTRACT-SIG-{suffix}"]  # every refusal has a registered code
    raise SignatureRefused(registered.code, reason)
