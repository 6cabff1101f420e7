"""The approval service's contract command API, as `awooop contracts` calls it.

Every refusal of the API (``{code, reason}``), an unreachable API and a missing token
become a ``ContractCommandError`` whose message is one line for the person.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

import httpx

from awooop.cli.platform_addresses import recorded_approval_url
from awooop.infra.settings import Settings, state_dir
from awooop.security.api_tokens import mint_api_token

CONTRACT_ADMIN = "contract_admin"
DEV_TOKEN_SECONDS = 600


class ContractCommandError(RuntimeError):
    """A contract command that did not happen; the message says why, in one line."""


def default_subject() -> str:
    """Who signs a development token when ``--as`` is not given."""
    return f"operator:{getpass.getuser()}"


def bearer_token(
    project: str,
    token: str | None,
    subject: str | None,
    *,
    role: str = CONTRACT_ADMIN,
    refusal: type[Exception] = ContractCommandError,
) -> str:
    """``token`` (``--token``), else ``AWOOOP_TOKEN``, else a 10-minute development token
    for ``subject`` with ``role`` on ``project``, signed with ``AWOOOP_API_JWT_SECRET`` or
    ``<home>/api-jwt.secret``. Raises ``refusal`` when none can be had."""
    if given := token or os.environ.get("AWOOOP_TOKEN"):
        return given
    secret = Settings.from_env().api_jwt_secret
    if not secret:
        raise refusal(
            "no token: pass --token or set AWOOOP_TOKEN (in development, `awooop dev up` "
            "writes <home>/api-jwt.secret and a token is minted for --as)"
        )
    try:
        return mint_api_token(
            secret,
            subject=subject or default_subject(),
            projects=[project],
            roles=[role],
            ttl_seconds=DEV_TOKEN_SECONDS,
        )
    except ValueError as error:
        raise refusal(f"cannot mint a development token: {error}") from None


def approval_url(refusal: type[Exception] = ContractCommandError) -> str:
    """The approval API's address; raises ``refusal`` when nothing records one."""
    url = recorded_approval_url(state_dir())
    if not url:
        raise refusal(
            "no approval API address: set AWOOOP_APPROVAL_URL or start the platform (`awooop up`)"
        )
    return url


class ContractClient:
    """Posts contract commands to the approval API, one token per project."""

    def __init__(self, token: str | None = None, subject: str | None = None) -> None:
        self.url = approval_url()
        self._token, self._subject = token, subject
        self._client = httpx.Client(base_url=self.url, timeout=15.0)

    def post(self, project: str, contract: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v1/contracts/<project>/<contract>/<path>``; the answer's JSON."""
        headers = {"Authorization": f"Bearer {bearer_token(project, self._token, self._subject)}"}
        try:
            response = self._client.post(
                f"/v1/contracts/{project}/{contract}/{path}", json=body, headers=headers
            )
        except httpx.TransportError as error:
            raise ContractCommandError(
                f"the approval API at {self.url} is unreachable ({type(error).__name__}); "
                "is the platform running (`awooop up`)?"
            ) from None
        if response.is_success:
            answer: dict[str, Any] = response.json()
            return answer
        raise ContractCommandError(refusal_line(response))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ContractClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def refusal_line(response: httpx.Response) -> str:
    """``<code>: <reason>`` of a refusal (its reason already lists a 422's errors)."""
    try:
        refusal = response.json()
        return f"{refusal['code']}: {refusal['reason']}"
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        return f"HTTP {response.status_code} from {response.request.url}: {text}"
