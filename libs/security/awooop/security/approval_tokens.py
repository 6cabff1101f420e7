"""Approval tokens: the one-time permission the approval service grants for one held call.

**What a token says.** A token is a JWT (compact JWS) whose header names ``alg``,
``typ: JWT`` and the ``kid`` of the key that signed it, and whose claims say: issued by
:data:`ISSUER` (``iss``) for :data:`AUDIENCE` (``aud``), about ``approval:<approval_id>``
(``sub``), valid from ``iat`` = ``nbf`` until ``exp`` (whole seconds), with the id
``jti`` = :func:`approval_token_id` of the approval, and bound to one action: the
``project_id``, ``run_id`` and ``call_id`` of the held call and its ``action_hash``
(:mod:`awooop.security.action_hash`: project, run, call, tool, arguments and policy
revision). The ``jti`` is derived from the approval and the claims are written in one
order, so the same key and the same grant always give the same token, byte for byte: a
grant retried after a crash yields the token already handed out, never a second one.

**Why EdDSA by default.** The approval service signs with an Ed25519 private key; the
MCP gateway verifies with the public key only, so the gateway (or anyone who reads its
settings) can never mint a token. ``HS256`` stays selectable per deployment through the
key spec (:mod:`awooop.security.signing_keys`), at the price that every verifier holds
the secret and could sign. Each key has one pinned algorithm: a token's ``alg`` is only
compared with its key's, never used to choose how it is checked, so ``alg: none``, an
``RS256`` token and an ``HS256`` token keyed with the Ed25519 public key's bytes
("algorithm confusion") are refused before any signature is computed.

**Rotation.** Add the new key to the verifiers' ring, then let the approval service sign
with it; tokens of the old key keep verifying until the old key is marked ``retired`` in
the ring (a retired key verifies nothing). Tokens live minutes, so retiring an old key
one token lifetime after the switch loses nothing.

**Refusals.** :class:`InvalidApprovalToken` carries a registered code and a reason safe
to show (it never holds the token or key bytes):

- ``E-MCP-GATE-008`` (:meth:`ApprovalTokenVerifier.verify`): the token is not one the
  gateway may honour: not a compact JWS, an undecodable header, ``alg: none``, no or an
  unknown ``kid``, a retired key, an algorithm other than the key's, a signature that
  does not verify (a forged or tampered token), expired, not yet valid, another
  audience or issuer, a required claim missing or malformed, or a ``jti`` or ``sub``
  that does not belong to its approval.
- ``E-MCP-GATE-009`` (:func:`check_binding`): a genuine token for another project, run,
  call or action (other arguments, another tool, another policy revision).

Each failure has its own reason. A ``jti`` used before (a replay, also ``009``) is the
gateway's to refuse, by a unique row in its own store; this module holds no state.
"""

from __future__ import annotations

import calendar
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import jwt

from awooop.contracts.registries.errors import E_MCP_GATE_008, E_MCP_GATE_009
from awooop.security.signing_keys import KID_RE, KeyRing, SigningKey

ISSUER = "awooop-approval"
AUDIENCE = "awooop-mcp-gateway"
TOKEN_ID_NAMESPACE = uuid.UUID("0f5c7a3e-2b8d-4e61-9c1a-7d4e8b2f6a90")
"""The UUIDv5 namespace of token ids: ``jti = uuid5(TOKEN_ID_NAMESPACE, approval_id)``."""
MAX_TOKEN_CHARS = 4096
"""The longest token considered (``approval.granted`` carries at most this much)."""
BINDING_CLAIMS = ("approval_id", "project_id", "run_id", "call_id", "action_hash")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", *BINDING_CLAIMS)
HEADER_PARAMETERS = frozenset({"alg", "typ", "kid"})
"""The only header parameters a token may carry: nothing in it may point at other keys
(``jwk``, ``jku``, ``x5u``) or change how the payload is read (``b64``, ``crit``)."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_JWS_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
_LAST_SECOND = 253_402_300_799
"""9999-12-31T23:59:59Z: the last whole second a datetime can hold."""
_PYJWT_OPTIONS: Any = {
    # Time comes from the caller's `now`, never from PyJWT's wall clock; audience,
    # issuer, subject and id are checked below, each with a reason of its own.
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


class InvalidApprovalToken(Exception):
    """A token that must not be honoured: `code` is ``E-MCP-GATE-008`` (invalid, expired)
    or ``E-MCP-GATE-009`` (bound to another call); `reason` says why and is safe to show."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ApprovalGrant:
    """What a token says: the approval, the one action it allows, and when."""

    approval_id: uuid.UUID
    project_id: str
    run_id: str
    call_id: str
    action_hash: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalClaims:
    """What a verified token says; `token_id` is its ``jti``, `kid` the key that signed it."""

    approval_id: uuid.UUID
    project_id: str
    run_id: str
    call_id: str
    action_hash: str
    token_id: str
    kid: str
    issued_at: datetime
    expires_at: datetime


def approval_token_id(approval_id: uuid.UUID) -> str:
    """The ``jti`` of every token of `approval_id`: one approval, one token id."""
    return str(uuid.uuid5(TOKEN_ID_NAMESPACE, str(approval_id)))


def mint_approval_token(key: SigningKey, grant: ApprovalGrant) -> str:
    """Sign `grant` with `key` (its algorithm, its kid). Deterministic: the same key and
    grant give the same token. Raises ValueError for empty ids, an action hash that is not
    64 lowercase hex digits, a naive time, or an expiry not after the issue (whole seconds).
    """
    if not isinstance(grant.approval_id, uuid.UUID):
        raise ValueError("approval_id must be a UUID")
    for name in ("project_id", "run_id", "call_id"):
        value = getattr(grant, name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if not isinstance(grant.action_hash, str) or not _SHA256_HEX.fullmatch(grant.action_hash):
        raise ValueError("action_hash must be 64 lowercase hex digits")
    issued = _whole_seconds(grant.issued_at, "issued_at")
    expires = _whole_seconds(grant.expires_at, "expires_at")
    if expires <= issued:
        raise ValueError("expires_at must be at least one whole second after issued_at")
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": _subject(grant.approval_id),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": approval_token_id(grant.approval_id),
        "approval_id": str(grant.approval_id),
        "project_id": grant.project_id,
        "run_id": grant.run_id,
        "call_id": grant.call_id,
        "action_hash": grant.action_hash,
    }
    return jwt.encode(claims, key.material, algorithm=key.alg, headers={"kid": key.kid})


class ApprovalTokenVerifier:
    """Verifies tokens against a key ring, with `leeway_seconds` of clock skew allowed on
    ``exp`` and ``nbf``. Holds no state: a replayed ``jti`` is the caller's to refuse."""

    def __init__(self, ring: KeyRing, *, leeway_seconds: float = 0.0) -> None:
        if not (isinstance(leeway_seconds, int | float) and 0 <= leeway_seconds < math.inf):
            raise ValueError("leeway_seconds must be a finite number of seconds, zero or more")
        self._ring = ring
        self._leeway = float(leeway_seconds)

    def verify(self, token: str, *, now: datetime) -> ApprovalClaims:
        """The claims of a token valid at `now`; InvalidApprovalToken (``E-MCP-GATE-008``)
        with a specific reason otherwise. ValueError for a naive `now`."""
        at = _timestamp(now, "now")
        kid, key_material, alg = self._pinned_key(_header_of(token))
        try:
            claims = jwt.decode(token, key_material, algorithms=[alg], options=_PYJWT_OPTIONS)
        except jwt.InvalidSignatureError:
            _invalid(f"the signature does not verify under key {kid!r}")
        except jwt.InvalidTokenError:
            _invalid("the payload is not a decodable JSON object")
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                _invalid(f"claim {name!r} is required")
        times = {name: _time_claim(claims, name) for name in ("iat", "nbf", "exp")}
        if claims["iss"] != ISSUER:
            _invalid(f"the issuer must be {ISSUER!r}")
        if not _for_gateway(claims["aud"]):
            _invalid(f"the audience must be {AUDIENCE!r}")
        if times["exp"] <= at - self._leeway:
            _invalid("the token has expired")
        if times["nbf"] > at + self._leeway:
            _invalid("the token is not valid yet")
        approval_id = _approval_id(claims["approval_id"])
        if claims["jti"] != approval_token_id(approval_id):
            _invalid("the jti is not the token id of its approval")
        if claims["sub"] != _subject(approval_id):
            _invalid("the sub does not name its approval")
        ids = {name: _text_claim(claims, name) for name in ("project_id", "run_id", "call_id")}
        action = claims["action_hash"]
        if not isinstance(action, str) or not _SHA256_HEX.fullmatch(action):
            _invalid("claim 'action_hash' must be 64 lowercase hex digits")
        return ApprovalClaims(
            approval_id=approval_id,
            project_id=ids["project_id"],
            run_id=ids["run_id"],
            call_id=ids["call_id"],
            action_hash=action,
            token_id=claims["jti"],
            kid=kid,
            issued_at=datetime.fromtimestamp(times["iat"], UTC),
            expires_at=datetime.fromtimestamp(times["exp"], UTC),
        )

    def _pinned_key(self, header: dict[str, Any]) -> tuple[str, Any, str]:
        """The kid, material and algorithm of the live key the header names, once the
        header's ``alg`` is that key's own: PyJWT never sees a key of another type."""
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or not alg:
            _invalid("the header names no algorithm")
        if alg.lower() == "none":
            _invalid("unsigned tokens (alg none) are refused")
        if kid is None:
            _invalid("the header names no kid")
        if not isinstance(kid, str) or not KID_RE.fullmatch(kid):
            _invalid("the header's kid is not a key id")
        key = self._ring.get(kid)
        if key is None:
            _invalid(f"no verifying key {kid!r}")
        if key.retired:
            _invalid(f"key {kid!r} is retired")
        if alg != key.alg:
            _invalid(f"key {kid!r} verifies {key.alg} only, not {alg[:16]!r}")
        return kid, key.material, key.alg


def check_binding(
    claims: ApprovalClaims, *, project_id: str, run_id: str, call_id: str, action_hash: str
) -> None:
    """Return if the verified `claims` allow exactly this call; InvalidApprovalToken
    (``E-MCP-GATE-009``) naming what differs otherwise: the project, the run, the call,
    or the action (arguments, tool or policy revision)."""
    if claims.project_id != project_id:
        _refuse_binding("the token was granted for another project")
    if claims.run_id != run_id:
        _refuse_binding("the token was granted for another run")
    if claims.call_id != call_id:
        _refuse_binding("the token was granted for another call")
    if claims.action_hash != action_hash:
        _refuse_binding(
            "the token was granted for another action "
            "(other arguments, another tool or another policy revision)"
        )


def _header_of(token: object) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        _invalid(f"a token is a compact JWS of at most {MAX_TOKEN_CHARS} characters")
    segments = token.split(".")
    if len(segments) != 3 or not all(_JWS_SEGMENT.fullmatch(part) for part in segments):
        _invalid("the token is not a compact JWS (header.payload.signature, base64url)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        _invalid("the header is not a decodable JSON object")
    extra = set(header) - HEADER_PARAMETERS
    if extra:
        _invalid(f"the header may hold {sorted(HEADER_PARAMETERS)} only")
    return header


def _time_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LAST_SECOND:
        _invalid(f"claim {name!r} must be whole seconds since the epoch")
    return value


def _text_claim(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        _invalid(f"claim {name!r} must be a non-empty string")
    return value


def _for_gateway(audience: object) -> bool:
    if isinstance(audience, list):
        return AUDIENCE in audience
    return audience == AUDIENCE


def _approval_id(value: object) -> uuid.UUID:
    try:
        parsed = uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value:
        _invalid("claim 'approval_id' must be a UUID")
    return parsed


def _subject(approval_id: uuid.UUID) -> str:
    return f"approval:{approval_id}"


def _whole_seconds(moment: datetime, name: str) -> int:
    _timestamp(moment, name)
    return calendar.timegm(moment.utctimetuple())


def _timestamp(moment: datetime, name: str) -> float:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.timestamp()


def _invalid(reason: str) -> NoReturn:
    raise InvalidApprovalToken(E_MCP_GATE_008.code, reason)


def _refuse_binding(reason: str) -> NoReturn:
    raise InvalidApprovalToken(E_MCP_GATE_009.code, reason)
