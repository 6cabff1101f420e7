"""API bearer tokens: HS256 pinned, issuer, audience, expiry and issue time required."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from awooop.security.api_tokens import (
    ApiClaims,
    InvalidApiToken,
    mint_api_token,
    verify_api_token,
)

pytestmark = pytest.mark.unit

SECRET = "unit-test-signing-secret-of-enough-bytes"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _claims(**overrides: object) -> dict[str, object]:
    issued = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": "awooop",
        "aud": "awooop-api",
        "sub": "alice",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=5)).timestamp()),
        "projects": ["acme"],
        "roles": ["viewer"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _segment(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_minted_token_verifies_to_its_claims() -> None:
    token = mint_api_token(
        SECRET, subject="alice", projects=["acme", "globex"], roles=["viewer"], ttl_seconds=600
    )
    claims = verify_api_token(token, SECRET)
    assert claims.subject == "alice"
    assert claims.projects == ("acme", "globex")
    assert claims.roles == ("viewer",)
    assert isinstance(claims, ApiClaims)
    assert timedelta(seconds=590) < claims.expires_at - datetime.now(UTC) <= timedelta(seconds=600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    body = jwt.decode(token, options={"verify_signature": False})
    assert (body["iss"], body["aud"]) == ("awooop", "awooop-api")


def test_expiry_follows_the_given_clock() -> None:
    token = mint_api_token(SECRET, subject="a", projects=["acme"], roles=[], now=NOW)
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["iat"] == int(NOW.timestamp())
    assert body["exp"] == int(NOW.timestamp()) + 3600


def test_an_expired_token_is_refused() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    token = mint_api_token(SECRET, subject="a", projects=["acme"], roles=[], now=past)
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(token, SECRET)
    assert refused.value.reason == "token expired"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = mint_api_token(
        "another-secret-of-at-least-32-bytes!", subject="a", projects=[], roles=[]
    )
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(token, SECRET)
    assert "signature" in refused.value.reason


def test_alg_none_is_refused() -> None:
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_claims())}."
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(unsigned, SECRET)
    assert "algorithm" in refused.value.reason


def test_another_hmac_algorithm_is_refused_even_with_the_right_secret() -> None:
    token = jwt.encode(_claims(), SECRET + SECRET, algorithm="HS512")
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(token, SECRET + SECRET)
    assert "only HS256" in refused.value.reason


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_a_missing_required_claim_is_refused(claim: str) -> None:
    token = jwt.encode(_claims(**{claim: None}), SECRET, algorithm="HS256")
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(token, SECRET)
    assert claim in refused.value.reason


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("aud", "somebody-else", "audience"),
        ("iss", "somebody-else", "issuer"),
        ("projects", ["Not A Project"], "projects"),
        ("projects", "acme", "projects"),
        ("roles", [7], "roles"),
    ],
)
def test_wrong_claims_are_refused(claim: str, value: object, reason: str) -> None:
    token = jwt.encode(_claims(**{claim: value}), SECRET, algorithm="HS256")
    with pytest.raises(InvalidApiToken) as refused:
        verify_api_token(token, SECRET)
    assert reason in refused.value.reason


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x.y.z"])
def test_malformed_tokens_are_refused(garbage: str) -> None:
    with pytest.raises(InvalidApiToken):
        verify_api_token(garbage, SECRET)


def test_a_tampered_payload_is_refused() -> None:
    token = mint_api_token(SECRET, subject="a", projects=["acme"], roles=[])
    head, _body, signature = token.split(".")
    forged = f"{head}.{_segment(_claims(projects=['globex']))}.{signature}"
    with pytest.raises(InvalidApiToken):
        verify_api_token(forged, SECRET)


def test_minting_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="secret"):
        mint_api_token("", subject="a", projects=[], roles=[])
    with pytest.raises(ValueError, match="project id"):
        mint_api_token(SECRET, subject="a", projects=["UPPER"], roles=[])
    with pytest.raises(ValueError, match="one string"):
        mint_api_token(SECRET, subject="a", projects="acme", roles=[])
    with pytest.raises(ValueError, match="ttl"):
        mint_api_token(SECRET, subject="a", projects=[], roles=[], ttl_seconds=0)
    with pytest.raises(ValueError, match="secret"):
        verify_api_token("x.y.z", "")
