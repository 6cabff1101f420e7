"""Counting how often the projector applies each event, in the projector's own database.

The read models are idempotent by design (timeline rows are keyed by `event_id`
and written `ON CONFLICT DO NOTHING`; run rows only move forward), so a second
application of an event leaves them exactly as they were: no read-model query can
see it. A row-level `BEFORE INSERT` trigger can: Postgres fires it for every row
an `INSERT … ON CONFLICT DO NOTHING` proposes, conflicting or not, inside the
writer's transaction. Each firing appends a row to a probe table, so an aborted
batch leaves no count and a committed batch leaves one per event it applied.
"""

from __future__ import annotations

import uuid
from collections import Counter

import asyncpg

PROBE_SCHEMA = "fault_probe"

_INSTALL = f"""
CREATE SCHEMA IF NOT EXISTS {PROBE_SCHEMA};
CREATE TABLE IF NOT EXISTS {PROBE_SCHEMA}.timeline_applications (event_id uuid NOT NULL);
CREATE OR REPLACE FUNCTION {PROBE_SCHEMA}.count_timeline_application() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO {PROBE_SCHEMA}.timeline_applications (event_id) VALUES (NEW.event_id);
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER count_timeline_application BEFORE INSERT ON {{schema}}.timeline
    FOR EACH ROW EXECUTE FUNCTION {PROBE_SCHEMA}.count_timeline_application();
"""


async def install_apply_counter(admin: asyncpg.Connection, schema: str = "projector") -> None:
    """Count every timeline row the projector proposes from now on (`admin`: a superuser,
    who owns the counting function, so the projector's role needs no grant on it)."""
    await admin.execute(_INSTALL.replace("{schema}", schema))


async def applications(admin: asyncpg.Connection, event_ids: set[uuid.UUID]) -> Counter[uuid.UUID]:
    """How many committed transactions applied each of `event_ids` (absent: never)."""
    rows = await admin.fetch(
        f"SELECT event_id, count(*) AS n FROM {PROBE_SCHEMA}.timeline_applications "
        "WHERE event_id = ANY($1::uuid[]) GROUP BY event_id",
        list(event_ids),
    )
    return Counter({r["event_id"]: int(r["n"]) for r in rows})
