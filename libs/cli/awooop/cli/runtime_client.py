"""The runtime's command API (run cancel, budget reset), as the CLI calls it.

Every refusal of the API (``{code, reason}``), an unreachable API and a missing token
become a ``RuntimeCommandError`` whose message is one line for the person.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx

from awooop.cli.contract_client import default_subject, refusal_line
from awooop.cli.platform_addresses import recorded_runtime_url
from awooop.infra.settings import Settings, state_dir
from awooop.security.api_tokens import mint_api_token

OPERATOR = "operator"
DEV_TOKEN_SECONDS = 600


class RuntimeCommandError(RuntimeError):
    """A run or budget command that did not happen; the message says why, in one line."""


def operator_token(token: str | None, subject: str | None) -> str:
    """``token`` (``--token``), else ``AWOOOP_TOKEN``, else a 10-minute development token
    for ``subject`` with the role ``operator``, signed with ``AWOOOP_API_JWT_SECRET`` or
    ``<home>/api-jwt.secret``."""
    if given := token or os.environ.get("AWOOOP_TOKEN"):
        return given
    secret = Settings.from_env().api_jwt_secret
    if not secret:
        raise RuntimeCommandError(
            "no token: pass --token or set AWOOOP_TOKEN (in development, `awooop dev up` "
            "writes <home>/api-jwt.secret and an operator token is minted for --as)"
        )
    try:
        return mint_api_token(
            secret,
            subject=subject or default_subject(),
            projects=[],
            roles=[OPERATOR],
            ttl_seconds=DEV_TOKEN_SECONDS,
        )
    except ValueError as error:
        raise RuntimeCommandError(f"cannot mint a development token: {error}") from None


def runtime_url() -> str:
    """The runtime command API's address; refuses when nothing records one."""
    url = recorded_runtime_url(state_dir())
    if not url:
        raise RuntimeCommandError(
            "no runtime API address: set AWOOOP_RUNTIME_URL or start the platform (`awooop up`)"
        )
    return url


class RuntimeClient:
    """Posts run and budget commands to the runtime API with one bearer token."""

    def __init__(
        self,
        token: str,
        url: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url or runtime_url()
        self._client = httpx.Client(
            base_url=self.url,
            timeout=15.0,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path``; the answer's JSON, or `RuntimeCommandError`."""
        return self._answer(lambda: self._client.post(path, json=body))

    def get(self, path: str) -> dict[str, Any]:
        """GET ``path``; the answer's JSON, or `RuntimeCommandError`."""
        return self._answer(lambda: self._client.get(path))

    def _answer(self, send: Callable[[], httpx.Response]) -> dict[str, Any]:
        try:
            response = send()
        except httpx.TransportError as error:
            raise RuntimeCommandError(
                f"the runtime API at {self.url} is unreachable ({type(error).__name__}); "
                "is the platform running (`awooop up`)?"
            ) from None
        if response.is_success:
            answer: dict[str, Any] = response.json()
            return answer
        raise RuntimeCommandError(refusal_line(response))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RuntimeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
