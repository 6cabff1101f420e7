"""Reading a request body without ever holding more than the limit."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from awooop.ingress.bridges.framing import BadRequest

TOO_LARGE = 413


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; :class:`BadRequest` (413) past it.

    ``Content-Length`` is checked before reading, and the bytes are counted while
    reading, for a chunked body that declares no length.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest("Content-Length is not a number of bytes")
        if int(declared) > limit:
            raise BadRequest(f"the body of {declared} bytes is over the {limit} byte limit", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the body is over the {limit} byte limit", TOO_LARGE)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("the client disconnected before the body ended") from None
    return b"".join(chunks)
