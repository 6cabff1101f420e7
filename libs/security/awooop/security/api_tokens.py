"""Bearer tokens of the query API: HS256 JWTs naming a subject, its projects and roles.

A token is signed with one shared secret (`AWOOOP_API_JWT_SECRET`). Verification
pins the algorithm to HS256 (so `alg: none` and every other algorithm are
refused), and requires `iss = "awooop"`, `aud = "awooop-api"`, `sub`, `iat`
and `exp`. Every failure raises :class:`InvalidApiToken` with a short reason
that is safe to return to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from awooop.contracts.records.envelope import PROJECT_ID_PATTERN

ALGORITHM = "HS256"
ISSUER = "awooop"
AUDIENCE = "awooop-api"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp")

_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class InvalidApiToken(Exception):
    """A bearer token that must not be honoured; `reason` says why, without secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ApiClaims:
    """What a verified token grants: who, which projects, which roles, until when."""

    subject: str
    projects: tuple[str, ...]
    roles: tuple[str, ...]
    expires_at: datetime


def mint_api_token(
    secret: str,
    *,
    subject: str,
    projects: Sequence[str],
    roles: Sequence[str],
    ttl_seconds: int = 3600,
    now: datetime | None = None,
) -> str:
    """Sign a token for `subject`, valid `ttl_seconds` from `now` (default: the clock).

    Raises `ValueError` for an empty secret or subject, a non-positive ttl, a
    project id outside `^[a-z0-9][a-z0-9_-]{1,63}$` or a malformed role.
    """
    if not secret:
        raise ValueError("the signing secret is empty")
    if not subject:
        raise ValueError("the subject is empty")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    _check_names(projects, _PROJECT_ID, "project id")
    _check_names(roles, _ROLE, "role")
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
        "projects": list(projects),
        "roles": list(roles),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_api_token(token: str, secret: str) -> ApiClaims:
    """The claims of a valid token; `InvalidApiToken` with a reason for anything else.

    Raises `ValueError` for an empty secret (a configuration error, not a bad token).
    """
    if not secret:
        raise ValueError("the signing secret is empty")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as error:
        raise InvalidApiToken("token expired") from error
    except jwt.InvalidSignatureError as error:
        raise InvalidApiToken("signature does not verify") from error
    except jwt.InvalidAlgorithmError as error:
        raise InvalidApiToken(f"algorithm not allowed: only {ALGORITHM} is accepted") from error
    except jwt.MissingRequiredClaimError as error:
        raise InvalidApiToken(f"claim {error.claim!r} is required") from error
    except jwt.InvalidAudienceError as error:
        raise InvalidApiToken(f"audience must be {AUDIENCE!r}") from error
    except jwt.InvalidIssuerError as error:
        raise InvalidApiToken(f"issuer must be {ISSUER!r}") from error
    except jwt.ImmatureSignatureError as error:
        raise InvalidApiToken("token not valid yet") from error
    except jwt.DecodeError as error:
        raise InvalidApiToken("malformed token") from error
    except jwt.InvalidTokenError as error:
        raise InvalidApiToken(f"invalid token: {error}") from error
    return ApiClaims(
        subject=_text_claim(claims, "sub"),
        projects=_names_claim(claims, "projects", _PROJECT_ID),
        roles=_names_claim(claims, "roles", _ROLE),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


def _check_names(values: Sequence[str], pattern: re.Pattern[str], what: str) -> None:
    if isinstance(values, str):
        raise ValueError(f"a sequence of {what}s is expected, not one string")
    for value in values:
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} {value!r} does not match {pattern.pattern}")


def _text_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidApiToken(f"claim {name!r} must be a non-empty string")
    return value


def _names_claim(claims: dict[str, Any], name: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(item, str) and pattern.fullmatch(item) for item in value
    ):
        raise InvalidApiToken(f"claim {name!r} must be a list of names matching {pattern.pattern}")
    return tuple(value)
