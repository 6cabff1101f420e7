"""An index for the claim query's timeout branch: active runs by `timeout_at`."""

from alembic import context, op

revision = "runtime_0002"
down_revision = "runtime_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE INDEX runs_timeout ON {s}.runs (timeout_at)
            WHERE state NOT IN ('completed', 'failed', 'cancelled', 'timeout')""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP INDEX {s}.runs_timeout")
