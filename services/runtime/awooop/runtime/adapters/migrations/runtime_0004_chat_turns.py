"""The runtime's own store of what was said in each chat: a person's messages that
started runs and the agent's replies, the earlier turns a run's agent may read."""

from alembic import context, op

revision = "runtime_0004"
down_revision = "runtime_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.chat_turns (
            seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            project_id   text NOT NULL,
            channel_type text NOT NULL,
            chat_id      text NOT NULL,
            run_id       uuid NOT NULL,
            role         text NOT NULL CHECK (role IN ('user', 'assistant')),
            text         text NOT NULL,
            UNIQUE (run_id, role)
        )""")
    op.execute(f"""
        CREATE INDEX chat_turns_by_chat ON {s}.chat_turns
            (project_id, channel_type, chat_id, seq)""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.chat_turns")
