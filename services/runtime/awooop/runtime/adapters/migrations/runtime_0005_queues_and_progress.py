"""Double texts that wait for their subject's run (`enqueue`), and the progress timer of
runs whose people see their messages."""

from alembic import context, op

revision = "runtime_0005"
down_revision = "runtime_0004"
branch_labels = None
depends_on = None

ACTIVE = "state NOT IN ('completed', 'failed', 'cancelled', 'timeout')"


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        ALTER TABLE {s}.runs
            ADD COLUMN progress_at      timestamptz,
            ADD COLUMN progress_seconds integer NOT NULL DEFAULT 30,
            ADD COLUMN progress_sent    integer NOT NULL DEFAULT 0""")
    op.execute(f"""
        CREATE INDEX runs_progress ON {s}.runs (progress_at)
            WHERE {ACTIVE} AND progress_at IS NOT NULL""")
    op.execute(f"""
        CREATE TABLE {s}.queued_messages (
            seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id       text NOT NULL,
            subject          text NOT NULL,
            message_event_id uuid NOT NULL UNIQUE,
            envelope         bytea NOT NULL
        )""")
    op.execute(f"""
        CREATE INDEX queued_messages_by_subject ON {s}.queued_messages
            (project_id, subject, seq)""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.queued_messages")
    op.execute(
        f"ALTER TABLE {s}.runs DROP COLUMN progress_at, DROP COLUMN progress_seconds, "
        "DROP COLUMN progress_sent"
    )
