"""Where a run's time goes: the gaps between its produce, the `occurred_at` of each of its
timeline events, and the poll that saw it completed.

Every `occurred_at` is stamped by the service that decided the event (ingress,
the runtime, the gateway) when it decided it, so the gap before an event
holds the previous event's relay, the broker, the deciding service's fetch
and its batch, or a local step. All clocks are this host's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg
from skeleton_load import RunTiming

SEEN = "seen `completed` in the read model"

EVENTS = """
SELECT r.trigger_text, t.event_type, t.occurred_at
FROM projector.timeline t JOIN projector.runs r USING (project_id, run_id)
WHERE t.project_id = $1
ORDER BY r.trigger_text, t.occurred_at, t.event_id
"""


async def timeline_gaps(
    database_url: str, project: str, runs: Sequence[RunTiming]
) -> dict[str, list[float]]:
    """Seconds from the previous step to each event type (in run order), then to `SEEN`."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(EVENTS, project)
    finally:
        await conn.close()
    events: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in rows:
        events[row["trigger_text"]].append((row["event_type"], row["occurred_at"].timestamp()))
    gaps: dict[str, list[float]] = {}
    for run in runs:
        previous = run.produced_wall
        for event_type, at in events.get(run.marker, []):
            gaps.setdefault(event_type, []).append(at - previous)
            previous = at
        seen_wall = run.produced_wall + run.produce_to_timeline
        gaps.setdefault(SEEN, []).append(seen_wall - previous)
    return gaps
