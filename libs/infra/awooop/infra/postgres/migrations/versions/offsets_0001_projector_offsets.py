"""Offsets kept in Postgres, written in the same transaction as the rows they cover."""

from alembic import context, op

revision = "offsets_0001"
down_revision = None
branch_labels = ("offsets",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.projector_offsets (
            consumer_group text    NOT NULL,
            topic          text    NOT NULL,
            partition      integer NOT NULL,
            next_offset    bigint  NOT NULL,
            PRIMARY KEY (consumer_group, topic, partition)
        )""")
    op.execute(f"""
        CREATE TABLE IF NOT EXISTS {s}.broker_epoch (
            singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            epoch       text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.projector_offsets")
