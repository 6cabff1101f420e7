"""Every refusal of the runtime's command API as ``{"code": "E-…", "reason": "…"}`` with
its status (and, where it helps the caller, a field or two more: a run's ``state``).

An outage of Postgres is a 503 the client may retry: nothing was written.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from awooop.contracts.registries.errors import E_API_REQUEST_INVALID


class ApiRefusal(Exception):
    """A refused command: status, code, reason, response headers and extra body fields."""

    def __init__(
        self,
        status: int,
        code: str,
        reason: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.status, self.code, self.reason = status, code, reason
        self.headers = headers or {}
        self.extra = extra


async def _refused(_request: Request, refused: Exception) -> JSONResponse:
    assert isinstance(refused, ApiRefusal)
    body = {"code": refused.code, "reason": refused.reason, **refused.extra}
    return JSONResponse(body, status_code=refused.status, headers=refused.headers)


def _where(location: Any) -> str:
    # ("body", "reason") -> "body.reason"; a missing body is just "body".
    return ".".join(str(part) for part in location) or "request"


async def _invalid(_request: Request, invalid: Exception) -> JSONResponse:
    assert isinstance(invalid, RequestValidationError)
    errors = [f"{_where(e['loc'])}: {e['msg']}" for e in invalid.errors()]
    reason = "the request does not match its schema: " + "; ".join(errors)
    body = {"code": E_API_REQUEST_INVALID.code, "reason": reason, "errors": errors}
    return JSONResponse(body, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Answer every refusal of ``app`` with its code and reason."""
    app.add_exception_handler(ApiRefusal, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
