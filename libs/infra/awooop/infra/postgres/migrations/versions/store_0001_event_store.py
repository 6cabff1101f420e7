"""The write side's store: events, outbox, streams, inbox (weekly partitions), broker epoch."""

from alembic import context, op

revision = "store_0001"
down_revision = None
branch_labels = ("store",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.events (
            position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id    uuid    NOT NULL UNIQUE,
            stream_type text    NOT NULL,
            stream_id   text    NOT NULL,
            stream_seq  integer NOT NULL CHECK (stream_seq >= 1),
            topic       text    NOT NULL,
            key         bytea,
            headers     jsonb   NOT NULL,
            data        bytea   NOT NULL,
            CONSTRAINT events_stream_version UNIQUE (stream_id, stream_seq)
        )""")
    op.execute(f"CREATE TABLE {s}.outbox (position bigint PRIMARY KEY)")
    op.execute(f"""
        CREATE TABLE {s}.streams (
            stream_id   text    PRIMARY KEY,
            stream_type text    NOT NULL,
            version     integer NOT NULL
        )""")
    # Partitioned on event_id itself (UUIDv7 bounds per week): Postgres needs
    # the partition key inside every unique key. Weekly partitions are made
    # and dropped by awooop.infra.postgres.inbox; the default one catches ids
    # outside every made range so an insert never fails for want of one.
    op.execute(f"""
        CREATE TABLE {s}.inbox (
            handler  text NOT NULL,
            event_id uuid NOT NULL,
            PRIMARY KEY (handler, event_id)
        ) PARTITION BY RANGE (event_id)""")
    op.execute(f"CREATE TABLE {s}.inbox_default PARTITION OF {s}.inbox DEFAULT")
    op.execute(f"""
        CREATE TABLE {s}.broker_epoch (
            singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            epoch       text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    for table in ("broker_epoch", "inbox", "streams", "outbox", "events"):
        op.execute(f"DROP TABLE {s}.{table}")
