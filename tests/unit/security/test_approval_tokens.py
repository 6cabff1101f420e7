"""Approval tokens: what one says, that a retried grant yields the same one, that every
attack on it is refused with its own reason, and that it only opens the call it names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from awooop.security.action_hash import action_hash
from awooop.security.approval_tokens import (
    AUDIENCE,
    ISSUER,
    REQUIRED_CLAIMS,
    ApprovalClaims,
    ApprovalGrant,
    ApprovalTokenVerifier,
    InvalidApprovalToken,
    approval_token_id,
    check_binding,
    mint_approval_token,
)
from awooop.security.signing_keys import (
    KeyRing,
    SigningKey,
    generate_ed25519_keys,
    generate_hs256_key,
)

pytestmark = pytest.mark.unit

INVALID = "E-MCP-GATE-008"
ELSEWHERE = "E-MCP-GATE-009"
NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
TTL = timedelta(seconds=600)
PROJECT, RUN, CALL = "acme", "0f3c5d1e-8a77-4b0e-9d7b-2f1a6c3e9b10", "call-7"
ARGUMENTS = {"host": "db-1", "action": "restart"}
ACTION = action_hash(
    project_id=PROJECT,
    run_id=RUN,
    call_id=CALL,
    tool="ops__restart",
    arguments=ARGUMENTS,
    policy_revision="policy@3:ab12",
)
APPROVAL_ID = uuid.UUID("6b1f6a52-5c0e-5b8e-9a4e-0c2d7f3e1a90")
GRANT = ApprovalGrant(APPROVAL_ID, PROJECT, RUN, CALL, ACTION, NOW, NOW + TTL)


@dataclass(frozen=True)
class Deployment:
    """The approval service's signing key and the gateway's ring, as settings text."""

    key: SigningKey
    signing_spec: str
    verifying_spec: str

    @classmethod
    def new(cls, kid: str, alg: str = "EdDSA") -> Deployment:
        pair = generate_ed25519_keys(kid) if alg == "EdDSA" else generate_hs256_key(kid)
        return cls(SigningKey.from_spec(pair.signing_spec), pair.signing_spec, pair.verifying_spec)

    @property
    def private(self) -> Ed25519PrivateKey:
        assert isinstance(self.key.material, Ed25519PrivateKey)
        return self.key.material

    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


OLD = Deployment.new("approvals-0")
LIVE = Deployment.new("approvals-1")
RING = KeyRing.from_spec(f"{LIVE.verifying_spec},{OLD.verifying_spec}:retired")
VERIFIER = ApprovalTokenVerifier(RING)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _claims(**changes: Any) -> dict[str, Any]:
    """The claims the approval service writes for GRANT, with `changes` (None drops one)."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"approval:{APPROVAL_ID}",
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int((NOW + TTL).timestamp()),
        "jti": approval_token_id(APPROVAL_ID),
        "approval_id": str(APPROVAL_ID),
        "project_id": PROJECT,
        "run_id": RUN,
        "call_id": CALL,
        "action_hash": ACTION,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _jws(header: dict[str, Any], payload: bytes, sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, so an attack never depends on PyJWT agreeing to sign it."""
    signing_input = f"{_b64(_json(header))}.{_b64(payload)}".encode()
    return f"{signing_input.decode()}.{_b64(sign(signing_input))}"


def _ed25519(deployment: Deployment = LIVE) -> Callable[[bytes], bytes]:
    return deployment.private.sign


def _hmac(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.digest(secret, message, hashlib.sha256)


def _rs256(message: bytes) -> bytes:
    return RSA_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _signed(claims: dict[str, Any], *, kid: str = "approvals-1", alg: str = "EdDSA") -> str:
    """A genuine signature of LIVE over `claims`: only the claims are wrong."""
    return _jws({"alg": alg, "kid": kid, "typ": "JWT"}, _json(claims), _ed25519())


def _tampered() -> str:
    header, payload, signature = mint_approval_token(LIVE.key, GRANT).split(".")
    forged = _b64(_json(_claims(call_id="call-8", action_hash="0" * 64)))
    assert forged != payload
    return f"{header}.{forged}.{signature}"


def _refusal(token: str, *, verifier: ApprovalTokenVerifier = VERIFIER, now: datetime = NOW) -> str:
    with pytest.raises(InvalidApprovalToken) as refused:
        verifier.verify(token, now=now)
    assert refused.value.code == INVALID
    assert str(refused.value) == f"{INVALID}: {refused.value.reason}"
    return refused.value.reason


# Every way a token can be wrong, each with the one reason that names it.
ATTACKS: list[tuple[str, Callable[[], str], str]] = [
    (
        "not a compact JWS",
        lambda: "approve-this-please",
        "the token is not a compact JWS (header.payload.signature, base64url)",
    ),
    (
        "undecodable header",
        lambda: f"{_b64(b'{not json')}.{_b64(_json(_claims()))}.c2ln",
        "the header is not a decodable JSON object",
    ),
    (
        "a header that points at another key",
        lambda: _jws(
            {"alg": "EdDSA", "kid": "approvals-1", "jku": "https://attacker.example/keys"},
            _json(_claims()),
            _ed25519(),
        ),
        "the header may hold ['alg', 'kid', 'typ'] only",
    ),
    (
        "alg none",
        lambda: _jws({"alg": "none", "kid": "approvals-1"}, _json(_claims()), lambda _m: b""),
        "unsigned tokens (alg none) are refused",
    ),
    (
        "no alg",
        lambda: _jws({"kid": "approvals-1"}, _json(_claims()), _ed25519()),
        "the header names no algorithm",
    ),
    (
        "no kid",
        lambda: _jws({"alg": "EdDSA", "typ": "JWT"}, _json(_claims()), _ed25519()),
        "the header names no kid",
    ),
    (
        "unknown kid",
        lambda: _signed(_claims(), kid="approvals-9"),
        "no verifying key 'approvals-9'",
    ),
    (
        "retired kid",
        lambda: mint_approval_token(OLD.key, GRANT),
        "key 'approvals-0' is retired",
    ),
    (
        "RS256 token",
        lambda: _jws({"alg": "RS256", "kid": "approvals-1"}, _json(_claims()), _rs256),
        "key 'approvals-1' verifies EdDSA only, not 'RS256'",
    ),
    (
        "HS256 keyed with the Ed25519 public key (algorithm confusion)",
        lambda: _jws(
            {"alg": "HS256", "kid": "approvals-1"}, _json(_claims()), _hmac(LIVE.public_raw())
        ),
        "key 'approvals-1' verifies EdDSA only, not 'HS256'",
    ),
    (
        "tampered payload",
        _tampered,
        "the signature does not verify under key 'approvals-1'",
    ),
    (
        "signed payload that is not a JSON object",
        lambda: _jws({"alg": "EdDSA", "kid": "approvals-1"}, b"[1, 2]", _ed25519()),
        "the payload is not a decodable JSON object",
    ),
    ("claim missing", lambda: _signed(_claims(call_id=None)), "claim 'call_id' is required"),
    (
        "exp not a number",
        lambda: _signed(_claims(exp="tomorrow")),
        "claim 'exp' must be whole seconds since the epoch",
    ),
    (
        "wrong iss",
        lambda: _signed(_claims(iss="awooop-gateway")),
        "the issuer must be 'awooop-approval'",
    ),
    (
        "wrong aud",
        lambda: _signed(_claims(aud="awooop-api")),
        "the audience must be 'awooop-mcp-gateway'",
    ),
    (
        "expired",
        lambda: mint_approval_token(LIVE.key, replace(GRANT, issued_at=NOW - TTL, expires_at=NOW)),
        "the token has expired",
    ),
    (
        "nbf in the future",
        lambda: mint_approval_token(LIVE.key, replace(GRANT, issued_at=NOW + timedelta(seconds=1))),
        "the token is not valid yet",
    ),
    (
        "approval_id not a UUID",
        lambda: _signed(_claims(approval_id="approval-1")),
        "claim 'approval_id' must be a UUID",
    ),
    (
        "jti not derived from the approval",
        lambda: _signed(_claims(jti=str(uuid.UUID(int=7)))),
        "the jti is not the token id of its approval",
    ),
    (
        "sub naming another approval",
        lambda: _signed(_claims(sub=f"approval:{uuid.UUID(int=7)}")),
        "the sub does not name its approval",
    ),
    (
        "empty binding id",
        lambda: _signed(_claims(run_id="")),
        "claim 'run_id' must be a non-empty string",
    ),
    (
        "malformed action hash",
        lambda: _signed(_claims(action_hash=ACTION.upper())),
        "claim 'action_hash' must be 64 lowercase hex digits",
    ),
]


def _midway(grant: ApprovalGrant) -> datetime:
    """A moment inside a grant's validity."""
    return grant.issued_at + (grant.expires_at - grant.issued_at) / 2


def test_a_minted_token_verifies_and_says_what_was_granted() -> None:
    token = mint_approval_token(LIVE.key, GRANT)
    claims = VERIFIER.verify(token, now=NOW)
    assert claims == ApprovalClaims(
        approval_id=APPROVAL_ID,
        project_id=PROJECT,
        run_id=RUN,
        call_id=CALL,
        action_hash=ACTION,
        token_id=approval_token_id(APPROVAL_ID),
        kid="approvals-1",
        issued_at=NOW,
        expires_at=NOW + TTL,
    )
    check_binding(claims, project_id=PROJECT, run_id=RUN, call_id=CALL, action_hash=ACTION)


def test_the_header_and_claims_are_exactly_the_specified_ones_in_a_stable_order() -> None:
    header, payload, _ = mint_approval_token(LIVE.key, GRANT).split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
        "alg": "EdDSA",
        "typ": "JWT",
        "kid": "approvals-1",
    }
    written = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert list(written.items()) == list(_claims().items())
    assert written["iat"] == written["nbf"] == 1_930_367_167  # 2031-03-04T05:06:07Z
    assert written["exp"] - written["iat"] == 600


@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_a_retried_grant_yields_the_same_token_byte_for_byte(alg: str) -> None:
    key = Deployment.new("approvals-1", alg).key
    first = mint_approval_token(key, GRANT)
    again = mint_approval_token(key, replace(GRANT))
    assert first == again
    # Sub-second parts never reach the token: a grant retried a moment later in the
    # same second is the same token.
    later = replace(GRANT, issued_at=NOW + timedelta(microseconds=900_000))
    assert mint_approval_token(key, later) == first
    longer = mint_approval_token(key, replace(GRANT, expires_at=NOW + 2 * TTL))
    assert longer != first
    assert (
        jwt.decode(longer, options={"verify_signature": False})["jti"]
        == (jwt.decode(first, options={"verify_signature": False})["jti"])
    )


def test_the_token_id_is_derived_from_the_approval_alone() -> None:
    assert approval_token_id(APPROVAL_ID) == approval_token_id(uuid.UUID(str(APPROVAL_ID)))
    assert approval_token_id(APPROVAL_ID) != approval_token_id(uuid.UUID(int=7))
    assert approval_token_id(APPROVAL_ID) != str(APPROVAL_ID)
    other = replace(GRANT, approval_id=uuid.UUID(int=7), call_id="call-8")
    claims = VERIFIER.verify(mint_approval_token(LIVE.key, other), now=NOW)
    assert claims.token_id == approval_token_id(uuid.UUID(int=7))


@pytest.mark.parametrize(("case", "build", "reason"), ATTACKS, ids=[case for case, *_ in ATTACKS])
def test_every_attack_is_refused_with_its_own_reason(
    case: str, build: Callable[[], str], reason: str
) -> None:
    assert _refusal(build()) == reason, case


def test_the_attack_reasons_are_all_distinct() -> None:
    reasons = [_refusal(build()) for _case, build, _reason in ATTACKS]
    assert len(set(reasons)) == len(ATTACKS)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_every_required_claim_is_required(claim: str) -> None:
    assert _refusal(_signed(_claims(**{claim: None}))) == f"claim {claim!r} is required"


@pytest.mark.parametrize("form", ["raw", "pem"])
def test_algorithm_confusion_is_refused_before_any_hmac_is_computed(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = LIVE.public_raw() if form == "raw" else LIVE.public_pem()
    token = _jws(
        {"alg": "HS256", "kid": "approvals-1", "typ": "JWT"}, _json(_claims()), _hmac(secret)
    )

    def never(*_args: object) -> object:
        raise AssertionError("an HMAC was computed for a key pinned to EdDSA")

    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", never)
    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "verify", never)
    assert _refusal(token) == "key 'approvals-1' verifies EdDSA only, not 'HS256'"


def test_a_token_signed_by_another_key_under_the_live_kid_is_refused() -> None:
    impostor = Deployment.new("approvals-1")
    token = mint_approval_token(impostor.key, GRANT)
    assert _refusal(token) == "the signature does not verify under key 'approvals-1'"


def test_the_eddsa_alg_spelled_otherwise_is_refused() -> None:
    token = _jws({"alg": "eddsa", "kid": "approvals-1"}, _json(_claims()), _ed25519())
    assert _refusal(token) == "key 'approvals-1' verifies EdDSA only, not 'eddsa'"
    none = _jws({"alg": "None", "kid": "approvals-1"}, _json(_claims()), lambda _m: b"")
    assert _refusal(none) == "unsigned tokens (alg none) are refused"


def test_expiry_and_not_before_are_judged_at_now_with_the_leeway() -> None:
    token = mint_approval_token(LIVE.key, GRANT)
    expires = NOW + TTL
    VERIFIER.verify(token, now=expires - timedelta(microseconds=1))
    assert _refusal(token, now=expires) == "the token has expired"
    assert _refusal(token, now=NOW - timedelta(microseconds=1)) == "the token is not valid yet"
    lenient = ApprovalTokenVerifier(RING, leeway_seconds=30)
    lenient.verify(token, now=expires + timedelta(seconds=29))
    lenient.verify(token, now=NOW - timedelta(seconds=30))
    assert _refusal(token, verifier=lenient, now=expires + timedelta(seconds=30)) == (
        "the token has expired"
    )
    assert _refusal(token, verifier=lenient, now=NOW - timedelta(seconds=31)) == (
        "the token is not valid yet"
    )


def test_verification_never_reads_the_wall_clock() -> None:
    # Minted for 2031: valid then, whatever today is.
    token = mint_approval_token(LIVE.key, GRANT)
    assert VERIFIER.verify(token, now=_midway(GRANT)).call_id == CALL
    past = replace(
        GRANT,
        issued_at=datetime(2001, 1, 1, tzinfo=UTC),
        expires_at=datetime(2001, 1, 1, 0, 10, tzinfo=UTC),
    )
    old_token = mint_approval_token(LIVE.key, past)
    assert VERIFIER.verify(old_token, now=_midway(past)).expires_at == past.expires_at


def test_a_rotated_in_key_is_accepted_while_the_old_one_verifies_until_retired() -> None:
    before = mint_approval_token(OLD.key, GRANT)
    after = mint_approval_token(LIVE.key, GRANT)
    both = ApprovalTokenVerifier(KeyRing.from_spec(f"{OLD.verifying_spec},{LIVE.verifying_spec}"))
    assert both.verify(after, now=NOW).kid == "approvals-1"
    assert both.verify(before, now=NOW).kid == "approvals-0"
    # The same grant under each key: the same token id, so the gateway runs it once.
    assert both.verify(after, now=NOW).token_id == both.verify(before, now=NOW).token_id
    retired = ApprovalTokenVerifier(
        KeyRing.from_spec(f"{OLD.verifying_spec}:retired,{LIVE.verifying_spec}")
    )
    assert retired.verify(after, now=NOW).kid == "approvals-1"
    assert _refusal(before, verifier=retired) == "key 'approvals-0' is retired"


def test_an_hs256_deployment_round_trips_and_pins_its_algorithm() -> None:
    deployment = Deployment.new("approvals-hs", "HS256")
    ring = KeyRing.from_spec(deployment.verifying_spec)
    token = mint_approval_token(deployment.key, GRANT)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("HS256", "approvals-hs")
    claims = ApprovalTokenVerifier(ring).verify(token, now=NOW)
    assert (claims.kid, claims.action_hash) == ("approvals-hs", ACTION)
    # An EdDSA token under the HS256 kid is refused by its algorithm, not tried as HMAC.
    relabelled = _jws({"alg": "EdDSA", "kid": "approvals-hs"}, _json(_claims()), _ed25519())
    verifier = ApprovalTokenVerifier(ring)
    assert _refusal(relabelled, verifier=verifier) == (
        "key 'approvals-hs' verifies HS256 only, not 'EdDSA'"
    )
    other_secret = Deployment.new("approvals-hs", "HS256").key
    assert _refusal(mint_approval_token(other_secret, GRANT), verifier=verifier) == (
        "the signature does not verify under key 'approvals-hs'"
    )


def test_no_reason_holds_the_token_or_key_bytes() -> None:
    hs = Deployment.new("approvals-1", "HS256")
    secrets_shown = {
        LIVE.signing_spec.rsplit(":", 1)[1],
        LIVE.verifying_spec.rsplit(":", 1)[1],
        hs.signing_spec.rsplit(":", 1)[1],
        LIVE.public_raw().hex(),
        LIVE.public_pem().decode(),
        LIVE.private.private_bytes_raw().hex(),
    }
    cases = [build() for _case, build, _reason in ATTACKS]
    cases.append(mint_approval_token(hs.key, GRANT))  # an HMAC token against an EdDSA key
    for token in cases:
        with pytest.raises(InvalidApprovalToken) as refused:
            VERIFIER.verify(token, now=NOW)
        shown = f"{refused.value} {refused.value!r} {refused.value.reason}"
        assert not {secret for secret in secrets_shown if secret in shown}
        pieces = {piece for piece in token.split(".") if len(piece) >= 8}
        assert not {piece for piece in pieces if piece in shown}, refused.value.reason
    assert "material" not in repr(LIVE.key)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        ({"project_id": "globex"}, "the token was granted for another project"),
        (
            {"run_id": "9a1d2c3b-0000-4000-8000-000000000001"},
            "the token was granted for another run",
        ),
        ({"call_id": "call-8"}, "the token was granted for another call"),
        (
            {"arguments": {"host": "db-2", "action": "restart"}},
            "the token was granted for another action "
            "(other arguments, another tool or another policy revision)",
        ),
        (
            {"tool": "ops__drop_database"},
            "the token was granted for another action "
            "(other arguments, another tool or another policy revision)",
        ),
        (
            {"policy_revision": "policy@4:cd34"},
            "the token was granted for another action "
            "(other arguments, another tool or another policy revision)",
        ),
    ],
    ids=["project", "run", "call", "arguments", "tool", "policy revision"],
)
def test_a_valid_token_opens_no_other_call(call: dict[str, Any], reason: str) -> None:
    claims = VERIFIER.verify(mint_approval_token(LIVE.key, GRANT), now=NOW)
    facts: dict[str, Any] = {
        "project_id": PROJECT,
        "run_id": RUN,
        "call_id": CALL,
        "tool": "ops__restart",
        "arguments": ARGUMENTS,
        "policy_revision": "policy@3:ab12",
        **call,
    }
    asked = action_hash(**facts)
    assert asked != ACTION
    with pytest.raises(InvalidApprovalToken) as refused:
        check_binding(
            claims,
            project_id=facts["project_id"],
            run_id=facts["run_id"],
            call_id=facts["call_id"],
            action_hash=asked,
        )
    assert (refused.value.code, refused.value.reason) == (ELSEWHERE, reason)


def test_the_binding_reasons_are_distinct() -> None:
    claims = VERIFIER.verify(mint_approval_token(LIVE.key, GRANT), now=NOW)
    same = {"project_id": PROJECT, "run_id": RUN, "call_id": CALL, "action_hash": ACTION}
    reasons = set()
    for field, other in [
        ("project_id", "globex"),
        ("run_id", "another-run"),
        ("call_id", "call-8"),
        ("action_hash", "0" * 64),
    ]:
        with pytest.raises(InvalidApprovalToken) as refused:
            check_binding(claims, **{**same, field: other})
        assert refused.value.code == ELSEWHERE
        reasons.add(refused.value.reason)
    assert len(reasons) == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"expires_at": NOW}, "expires_at must be at least one whole second after issued_at"),
        ({"expires_at": NOW - TTL}, "expires_at must be at least one whole second after"),
        (
            {"expires_at": NOW + timedelta(microseconds=999_999)},
            "expires_at must be at least one whole second after",
        ),
        ({"action_hash": ACTION.upper()}, "action_hash must be 64 lowercase hex digits"),
        ({"action_hash": ACTION[:63]}, "action_hash must be 64 lowercase hex digits"),
        ({"project_id": ""}, "project_id must be a non-empty string"),
        ({"run_id": ""}, "run_id must be a non-empty string"),
        ({"call_id": ""}, "call_id must be a non-empty string"),
        ({"approval_id": str(APPROVAL_ID)}, "approval_id must be a UUID"),
        ({"issued_at": NOW.replace(tzinfo=None)}, "issued_at must be a timezone-aware datetime"),
    ],
)
def test_minting_refuses_a_grant_that_cannot_be_a_token(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mint_approval_token(LIVE.key, replace(GRANT, **changes))


def test_verification_needs_an_aware_now_and_a_sane_leeway() -> None:
    token = mint_approval_token(LIVE.key, GRANT)
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        VERIFIER.verify(token, now=NOW.replace(tzinfo=None))
    for leeway in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="leeway_seconds"):
            ApprovalTokenVerifier(RING, leeway_seconds=leeway)
