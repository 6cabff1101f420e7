"""`GET /v1/channel-events`: the tenant's recent inbound records and what became of each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from awooop.projector.api import channel_queries
from awooop.projector.api.auth import Tenant, TenantSession
from awooop.projector.api.channel_models import ChannelEvent, ChannelEventPage
from awooop.projector.api.routes import REFUSALS
from awooop.projector.domain.channel_events import ChannelOutcome

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

router = APIRouter(prefix="/v1")


@router.get(
    "/channel-events", response_model=ChannelEventPage, responses=REFUSALS, tags=["channels"]
)
async def list_channel_events(
    project_id: Tenant,
    session: TenantSession,
    channel_type: Annotated[
        str | None,
        Query(pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="only this channel (telegram, …)"),
    ] = None,
    provider_event_id_prefix: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="only provider event ids starting with this text (`%` and `_` are "
            "plain characters here)",
        ),
    ] = None,
    outcome: Annotated[ChannelOutcome | None, Query(description="only this outcome")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"events to return, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
) -> ChannelEventPage:
    """The tenant's newest channel events (messages, button presses, ignored, duplicate
    and rejected records), newest first, each with its outcome and the fields that go
    with it; a message's text is its redacted `display_text` only."""
    rows = await channel_queries.list_channel_events(
        session,
        project_id,
        channel_type=channel_type,
        provider_event_id_prefix=provider_event_id_prefix,
        outcome=outcome,
        limit=limit,
    )
    return ChannelEventPage(items=[ChannelEvent.model_validate(row) for row in rows])
