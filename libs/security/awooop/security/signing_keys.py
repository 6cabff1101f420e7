"""Keys for contract signatures: Ed25519 (``EdDSA``, the default) or ``HS256``.

Holds the signing and verifying keys, the key ring, their specs, the key
generators and the strict base64url both specs and signatures are written in.
Each key has a `kid` and one pinned algorithm.

With Ed25519 a reader holds public keys only and cannot sign. With HS256 the
one secret signs and verifies, so every verifier can also sign: that is why
Ed25519 is the default. Key specs:

- key: ``<kid>:<alg>:<key bytes, base64url without padding>``; a kid matches
  ``^[A-Za-z0-9._-]{1,64}$``; EdDSA key bytes are the 32-byte private seed
  (signing) or public key (verifying); an HS256 secret has at least 32 bytes.
- ring: verifying keys separated by commas, each may end in ``:retired``.
  Rotation: add the new key and sign with it; retire the old one once no
  contract needs it. A retired key verifies nothing.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Algorithm = Literal["EdDSA", "HS256"]
KID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
KID_RE = re.compile(KID_PATTERN)
HS256_MIN_SECRET_BYTES = 32
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class InvalidKey(ValueError):
    """A key or key spec that cannot be used; the message never holds key bytes."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key that signs: an Ed25519 private key or an HS256 secret. Raises InvalidKey."""

    kid: str
    alg: Algorithm
    material: Ed25519PrivateKey | bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key(self.kid, self.alg, self.material, Ed25519PrivateKey)

    @classmethod
    def from_spec(cls, spec: str) -> SigningKey:
        """Parse ``<kid>:<alg>:<base64url seed or secret>``; ``:retired`` is refused."""
        kid, alg, raw, _ = _parse_spec(spec, may_retire=False)
        return cls(kid, alg, _ed25519_private(kid, raw) if alg == "EdDSA" else raw)

    def verifying_key(self) -> VerifyingKey:
        """The matching verifying key: the public key for EdDSA, the same secret for HS256."""
        material = self.material
        if isinstance(material, Ed25519PrivateKey):
            return VerifyingKey(self.kid, self.alg, material.public_key())
        return VerifyingKey(self.kid, self.alg, material)


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """A key that verifies: an Ed25519 public key or an HS256 secret. Raises InvalidKey."""

    kid: str
    alg: Algorithm
    material: Ed25519PublicKey | bytes = field(repr=False)
    retired: bool = False

    def __post_init__(self) -> None:
        _check_key(self.kid, self.alg, self.material, Ed25519PublicKey)

    @classmethod
    def from_spec(cls, spec: str) -> VerifyingKey:
        """Parse ``<kid>:<alg>:<base64url public key or secret>[:retired]``."""
        kid, alg, raw, retired = _parse_spec(spec, may_retire=True)
        if alg == "EdDSA":
            _check_length(kid, raw, 32)
            return cls(kid, alg, Ed25519PublicKey.from_public_bytes(raw), retired)
        return cls(kid, alg, raw, retired)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Verifying keys by kid: unique kids and at least one key not retired, else InvalidKey."""

    keys: tuple[VerifyingKey, ...]

    def __post_init__(self) -> None:
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise InvalidKey(f"a key id appears twice in the ring: {sorted(kids)}")
        if all(key.retired for key in self.keys):
            raise InvalidKey("the ring has no key that is not retired")

    @classmethod
    def from_spec(cls, spec: str) -> KeyRing:
        """Parse comma-separated verifying key specs (see :meth:`VerifyingKey.from_spec`)."""
        return cls(tuple(VerifyingKey.from_spec(part) for part in spec.split(",")))

    def get(self, kid: str) -> VerifyingKey | None:
        """The key named `kid`, retired or not, or None."""
        return next((key for key in self.keys if key.kid == kid), None)


@dataclass(frozen=True, slots=True)
class KeySpecPair:
    """A new key as settings text: the signer's spec and the verifiers' (equal for HS256).

    Neither appears in ``repr``: for HS256 the verifying spec is the secret too.
    """

    signing_spec: str = field(repr=False)
    verifying_spec: str = field(repr=False)


def generate_ed25519_keys(kid: str) -> KeySpecPair:
    """A fresh Ed25519 key as specs: the private seed to sign, the public key to verify."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    return _pair(SigningKey(kid, "EdDSA", private), public, private.private_bytes_raw())


def generate_hs256_key(kid: str, size: int = HS256_MIN_SECRET_BYTES) -> KeySpecPair:
    """A fresh random HS256 secret of `size` bytes (at least 32) as one spec, used by both."""
    secret = secrets.token_bytes(size)
    return _pair(SigningKey(kid, "HS256", secret), secret, secret)


def verifying_spec_of(signing_spec: str) -> str:
    """The verifying key spec of a signing key spec: its public key for EdDSA, the same
    secret for HS256. Raises InvalidKey."""
    key = SigningKey.from_spec(signing_spec)
    material = key.verifying_key().material
    raw = material if isinstance(material, bytes) else material.public_bytes_raw()
    return f"{key.kid}:{key.alg}:{b64url_encode(raw)}"


def b64url_encode(raw: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strict base64url without padding: one spelling per byte string, else None."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if b64url_encode(raw) == text else None


def _pair(key: SigningKey, verifying: bytes, signing: bytes) -> KeySpecPair:
    prefix = f"{key.kid}:{key.alg}:"
    return KeySpecPair(prefix + b64url_encode(signing), prefix + b64url_encode(verifying))


def _check_key(kid: str, alg: str, material: object, ed25519_type: type) -> None:
    if not isinstance(kid, str) or not KID_RE.fullmatch(kid):
        raise InvalidKey(f"a key id must match {KID_PATTERN}")
    if alg == "EdDSA" and not isinstance(material, ed25519_type):
        raise InvalidKey(f"key {kid!r}: an EdDSA key must be an {ed25519_type.__name__}")
    if alg == "HS256":
        if not isinstance(material, bytes):
            raise InvalidKey(f"key {kid!r}: an HS256 secret must be bytes")
        _check_length(kid, material, HS256_MIN_SECRET_BYTES, at_least=True)
    elif alg != "EdDSA":
        raise InvalidKey(f"key {kid!r}: the algorithm must be EdDSA or HS256")


def _check_length(kid: str, raw: bytes, size: int, *, at_least: bool = False) -> None:
    if len(raw) < size or (len(raw) != size and not at_least):
        need = f"at least {size}" if at_least else f"exactly {size}"
        raise InvalidKey(f"key {kid!r}: {need} key bytes are needed, got {len(raw)}")


def _parse_spec(spec: str, *, may_retire: bool) -> tuple[str, Algorithm, bytes, bool]:
    parts = spec.strip().split(":")
    retired = may_retire and len(parts) == 4 and parts[3] == "retired"
    if len(parts) != 3 + retired:
        tail = "[:retired]" if may_retire else ""
        raise InvalidKey(f"a key spec is <kid>:<alg>:<base64url key>{tail}")
    kid, alg, encoded = parts[:3]
    if not KID_RE.fullmatch(kid):
        raise InvalidKey(f"a key id must match {KID_PATTERN}")
    if alg not in ("EdDSA", "HS256"):
        raise InvalidKey(f"key {kid!r}: the algorithm must be EdDSA or HS256")
    raw = b64url_decode(encoded)
    if raw is None:
        raise InvalidKey(f"key {kid!r}: the key bytes are not base64url without padding")
    return kid, "EdDSA" if alg == "EdDSA" else "HS256", raw, retired


def _ed25519_private(kid: str, seed: bytes) -> Ed25519PrivateKey:
    _check_length(kid, seed, 32)
    return Ed25519PrivateKey.from_private_bytes(seed)
