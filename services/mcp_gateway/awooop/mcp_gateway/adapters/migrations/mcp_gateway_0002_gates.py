"""The gates' state: calls held for an approval, the asking agent, and the kill switches.

`tool_calls` gains the status `awaiting_approval` (gate 5 holds the call until an
approval bound to it arrives) and `agent_ref`, the agent revision whose step asked.
`tenant_kills` folds `budget.tenant_killed` / `budget.tenant_reset` from
`awooop.budget.events.v1`: a row while the project's kill switch is tripped.
"""

from alembic import context, op

revision = "mcp_gateway_0002"
down_revision = "mcp_gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"ALTER TABLE {s}.tool_calls DROP CONSTRAINT tool_calls_status_check")
    op.execute(
        f"ALTER TABLE {s}.tool_calls ADD CONSTRAINT tool_calls_status_check CHECK (status IN "
        "('blocked', 'awaiting_approval', 'admitted', 'executing', 'succeeded', 'failed'))"
    )
    op.execute(f"ALTER TABLE {s}.tool_calls ADD COLUMN agent_ref text")
    op.execute(f"""
        CREATE TABLE {s}.tenant_kills (
            project_id text        PRIMARY KEY,
            killed_at  timestamptz NOT NULL,
            event_id   uuid        NOT NULL
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.tenant_kills")
    op.execute(f"ALTER TABLE {s}.tool_calls DROP COLUMN agent_ref")
    op.execute(f"DELETE FROM {s}.tool_calls WHERE status = 'awaiting_approval'")
    op.execute(f"ALTER TABLE {s}.tool_calls DROP CONSTRAINT tool_calls_status_check")
    op.execute(
        f"ALTER TABLE {s}.tool_calls ADD CONSTRAINT tool_calls_status_check CHECK (status IN "
        "('blocked', 'admitted', 'executing', 'succeeded', 'failed'))"
    )
