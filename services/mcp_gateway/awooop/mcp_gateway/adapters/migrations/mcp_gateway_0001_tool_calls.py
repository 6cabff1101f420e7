"""The gateway's record of every tool call it decided: admitted, executing or answered.

`call_id` is the primary key: a call is decided once and run at most once,
whatever the broker redelivers. `claimed_by` names the executor process that
started a call; a call left `executing` by a process that is gone is never run
again (its outcome is reported unknown).
"""

from alembic import context, op

revision = "mcp_gateway_0001"
down_revision = None
branch_labels = ("mcp_gateway",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.tool_calls (
            call_id          text        PRIMARY KEY,
            run_id           text        NOT NULL,
            project_id       text        NOT NULL,
            tool             text        NOT NULL,
            arguments        jsonb       NOT NULL,
            execute_before   timestamptz NOT NULL,
            trace_id         text        NOT NULL,
            request_event_id uuid        NOT NULL,
            status           text        NOT NULL CHECK (status IN
                ('blocked', 'admitted', 'executing', 'succeeded', 'failed')),
            revision         text        NOT NULL,
            outcome_code     text,
            claimed_by       text,
            decided_at       timestamptz NOT NULL DEFAULT now(),
            started_at       timestamptz,
            finished_at      timestamptz
        )""")
    op.execute(
        f"CREATE INDEX tool_calls_admitted ON {s}.tool_calls (execute_before) "
        "WHERE status = 'admitted'"
    )
    op.execute(
        f"CREATE INDEX tool_calls_executing ON {s}.tool_calls (claimed_by) "
        "WHERE status = 'executing'"
    )


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.tool_calls")
