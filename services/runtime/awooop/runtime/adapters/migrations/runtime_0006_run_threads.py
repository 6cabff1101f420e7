"""Where a run's messages go: the thread and the message of the chat that started it."""

from alembic import context, op

revision = "runtime_0006"
down_revision = "runtime_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"ALTER TABLE {s}.runs ADD COLUMN thread_id text, ADD COLUMN reply_to text")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"ALTER TABLE {s}.runs DROP COLUMN thread_id, DROP COLUMN reply_to")
