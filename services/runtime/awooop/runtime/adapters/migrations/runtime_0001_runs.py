"""The runtime's scheduler table: one row per run, its state, lease and timers."""

from alembic import context, op

revision = "runtime_0001"
down_revision = None
branch_labels = ("runtime",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.runs (
            run_id              uuid PRIMARY KEY,
            project_id          text NOT NULL,
            platform_subject_id text NOT NULL,
            agent_id            text NOT NULL,
            channel_type        text NOT NULL,
            chat_id             text NOT NULL,
            mode                text NOT NULL,
            revision            text NOT NULL,
            trace_id            text NOT NULL,
            state               text NOT NULL,
            version             integer NOT NULL,
            step                integer NOT NULL DEFAULT 0,
            pending_call_id     text,
            last_result         jsonb,
            last_event_id       uuid NOT NULL,
            wake_at             timestamptz,
            lease_owner         text,
            lease_epoch         integer NOT NULL DEFAULT 0,
            lease_until         timestamptz,
            attempt             integer NOT NULL DEFAULT 0,
            max_attempts        integer NOT NULL,
            timeout_at          timestamptz NOT NULL
        )""")
    # At most one active run per subject: the constraint behind double-texting.
    op.execute(f"""
        CREATE UNIQUE INDEX runs_one_active_per_subject ON {s}.runs
            (project_id, platform_subject_id)
            WHERE state NOT IN ('completed', 'failed', 'cancelled', 'timeout')""")
    op.execute(f"""
        CREATE INDEX runs_due ON {s}.runs (wake_at)
            WHERE state NOT IN ('completed', 'failed', 'cancelled', 'timeout')""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.runs")
