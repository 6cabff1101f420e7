"""Outbox rows the relay can never publish, set aside with the reason (`outbox_parked`)."""

from alembic import context, op

revision = "store_0002"
down_revision = "store_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    # topic and key are copied from the event so the relay can hold back later
    # rows of the same key without joining the events table on every batch.
    op.execute(f"""
        CREATE TABLE {s}.outbox_parked (
            position   bigint      PRIMARY KEY,
            topic      text        NOT NULL,
            key        bytea,
            error_code text        NOT NULL,
            error      text        NOT NULL,
            parked_at  timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute(f"CREATE INDEX outbox_parked_topic_key ON {s}.outbox_parked (topic, key)")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.outbox_parked")
