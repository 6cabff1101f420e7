"""A server's listing as gate 1 sees it: every page, pinned like the deploy contracts."""

from __future__ import annotations

from typing import Any, cast

import pytest
from mcp import Client
from mcp.types import ListToolsResult
from mcp.types import Tool as ListedTool

from awooop.mcp_gateway.adapters.tool_listings import MAX_PAGES, ListingTooLong, list_pins
from awooop.security.tool_pins import tool_pin_sha256

pytestmark = pytest.mark.unit

SCHEMA = {"type": "object", "properties": {"service": {"type": "string"}}}


class PagedServer:
    """A hand-written stand-in for `mcp.Client.list_tools` over numbered pages."""

    def __init__(self, pages: list[list[ListedTool]], *, endless: bool = False) -> None:
        self.pages = pages
        self.endless = endless
        self.asked: list[tuple[str | None, str]] = []

    async def list_tools(self, *, cursor: str | None = None, cache_mode: str = "use") -> Any:
        self.asked.append((cursor, cache_mode))
        index = int(cursor) if cursor else 0
        last = index + 1 >= len(self.pages) and not self.endless
        page = self.pages[min(index, len(self.pages) - 1)]
        return ListToolsResult(tools=page, next_cursor=None if last else str(index + 1))


def _listed(name: str, description: str | None, schema: dict[str, Any] = SCHEMA) -> ListedTool:
    return ListedTool(name=name, description=description, input_schema=schema)


async def test_every_page_is_listed_and_pinned_from_the_server_itself() -> None:
    server = PagedServer(
        [
            [_listed("status", "Reports health."), _listed("uptime", None)],
            [_listed("errors", "Recent errors.")],
            [_listed("disk", "Disk usage.")],
        ]
    )

    pins = await list_pins(cast(Client, server), "demo")

    assert pins == {
        "status": tool_pin_sha256("Reports health.", SCHEMA),
        "uptime": tool_pin_sha256("", SCHEMA),
        "errors": tool_pin_sha256("Recent errors.", SCHEMA),
        "disk": tool_pin_sha256("Disk usage.", SCHEMA),
    }
    assert server.asked == [(None, "bypass"), ("1", "bypass"), ("2", "bypass")]


async def test_a_tool_whose_schema_cannot_be_pinned_is_left_out() -> None:
    odd = {"type": "object", "maximum": 2**60}
    server = PagedServer([[_listed("status", "Reports health."), _listed("odd", "Odd.", odd)]])

    pins = await list_pins(cast(Client, server), "demo")

    assert set(pins) == {"status"}


async def test_a_listing_that_never_ends_is_refused_rather_than_cut() -> None:
    server = PagedServer([[_listed("status", "Reports health.")]], endless=True)
    with pytest.raises(ListingTooLong, match="demo"):
        await list_pins(cast(Client, server), "demo")
    assert len(server.asked) == MAX_PAGES


async def test_the_listing_cannot_be_changed_by_its_readers() -> None:
    pins = await list_pins(cast(Client, PagedServer([[_listed("status", "x")]])), "demo")
    with pytest.raises(TypeError):
        pins["status"] = "0" * 64  # type: ignore[index]
