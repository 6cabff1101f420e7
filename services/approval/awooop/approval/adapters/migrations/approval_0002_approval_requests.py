"""Approval requests, what the service knows of runs, and holds waiting for their run.

`approval_requests` is the state of each request as its events left it (one row per
held call: the id is derived from the call). `approval_runs` keeps, per run, who asked
(the requester), when the run must end, and whether it ended. `held_calls` keeps a
`gateway.approval_required` that arrived before its run's `run.started` (the two come
on different topics), until the run is known.
"""

from alembic import context, op

revision = "approval_0002"
down_revision = "approval_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.approval_requests (
            approval_id         uuid        PRIMARY KEY,
            project_id          text        NOT NULL,
            run_id              text        NOT NULL,
            call_id             text        NOT NULL,
            action_hash         text        NOT NULL,
            policy_revision     text        NOT NULL,
            approvers           jsonb       NOT NULL,
            approvals_required  integer     NOT NULL CHECK (approvals_required >= 1),
            rejections_required integer     NOT NULL CHECK (rejections_required >= 1),
            requester           text,
            expires_at          timestamptz NOT NULL,
            state               text        NOT NULL
                CHECK (state IN ('pending', 'granted', 'denied')),
            votes               jsonb       NOT NULL DEFAULT '[]',
            decided_at          timestamptz,
            seq                 integer     NOT NULL,
            trace_id            text        NOT NULL
        )""")
    op.execute(f"""
        CREATE INDEX approval_requests_due ON {s}.approval_requests (expires_at)
        WHERE state = 'pending'""")
    op.execute(f"CREATE INDEX approval_requests_run ON {s}.approval_requests (run_id)")
    op.execute(f"""
        CREATE TABLE {s}.approval_runs (
            run_id      text        PRIMARY KEY,
            project_id  text        NOT NULL,
            requester   text,
            deadline    timestamptz,
            ended       text
        )""")
    op.execute(f"""
        CREATE TABLE {s}.held_calls (
            approval_id uuid        PRIMARY KEY,
            run_id      text        NOT NULL,
            envelope    bytea       NOT NULL
        )""")
    op.execute(f"CREATE INDEX held_calls_run ON {s}.held_calls (run_id)")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.held_calls")
    op.execute(f"DROP TABLE {s}.approval_runs")
    op.execute(f"DROP TABLE {s}.approval_requests")
