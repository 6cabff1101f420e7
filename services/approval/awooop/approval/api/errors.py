"""Every refusal of the command API as ``{"code": "E-…", "reason": "…"}`` with its status.

Domain refusals carry their code; this module only chooses the HTTP status. An outage
of Postgres is a 503 the client may retry: nothing was written.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from awooop.approval.adapters.contract_commands import RequestReused
from awooop.approval.domain.body_checks import pointer
from awooop.approval.domain.refusals import (
    ContractBodyInvalid,
    ContractFamilyRefused,
    ContractRefused,
    ContractUnknown,
)
from awooop.contracts.registries.errors import E_API_REQUEST_INVALID, CodedError


class ApiRefusal(Exception):
    """A refusal decided at the HTTP edge (auth, outage): status, code and reason."""

    def __init__(self, status: int, code: str, reason: str, **headers: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.status, self.code, self.reason, self.headers = status, code, reason, headers


def refusal_status(refused: CodedError) -> int:
    """404 for an unknown contract or revision, 422 for a body or family its rules refuse,
    409 for the rest (the lifecycle state, the signer, a reused request id, a bot another
    project holds)."""
    if isinstance(refused, ContractUnknown):
        return 404
    if isinstance(refused, ContractBodyInvalid | ContractFamilyRefused):
        return 422
    return 409


def _body(code: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "reason": reason, **extra}


async def _coded(_request: Request, refused: Exception) -> JSONResponse:
    assert isinstance(refused, CodedError)
    extra = {"errors": list(refused.problems)} if isinstance(refused, ContractBodyInvalid) else {}
    return JSONResponse(
        _body(refused.code, refused.reason, **extra), status_code=refusal_status(refused)
    )


async def _api(_request: Request, refused: Exception) -> JSONResponse:
    assert isinstance(refused, ApiRefusal)
    return JSONResponse(
        _body(refused.code, refused.reason), status_code=refused.status, headers=refused.headers
    )


async def _invalid(_request: Request, invalid: Exception) -> JSONResponse:
    assert isinstance(invalid, RequestValidationError)
    errors = [f"{pointer(e['loc'])}: {e['msg']}" for e in invalid.errors()]
    reason = "the request does not match its schema: " + "; ".join(errors)
    return JSONResponse(_body(E_API_REQUEST_INVALID.code, reason, errors=errors), status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Answer every refusal of ``app`` with its code and reason."""
    app.add_exception_handler(ContractRefused, _coded)
    app.add_exception_handler(RequestReused, _coded)
    app.add_exception_handler(ApiRefusal, _api)
    app.add_exception_handler(RequestValidationError, _invalid)
