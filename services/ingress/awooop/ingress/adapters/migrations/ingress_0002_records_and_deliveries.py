"""Every inbound record's one outcome, and the outbound deliveries ingress makes."""

from alembic import context, op

revision = "ingress_0002"
down_revision = "ingress_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    # One row per record of the inbound topic that ingress decided on: a redelivered
    # record (a rebalance, a restart before the offset commit) finds its row and leaves
    # no second trace. The record's timestamp is part of the key because offsets
    # start over on a new broker (ARCHITECTURE, "broker loss"). A rejected record may
    # be decided again, once, when an operator replays it from the DLQ.
    op.execute(f"""
        CREATE TABLE {s}.inbound_records (
            record_partition integer     NOT NULL,
            record_offset    bigint      NOT NULL,
            record_timestamp bigint      NOT NULL,
            event_id         uuid        NOT NULL,
            rejected         boolean     NOT NULL DEFAULT false,
            recorded_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (record_partition, record_offset, record_timestamp)
        )""")
    # The delivery guard: a row is written, and committed, before the provider is
    # called, so a redelivered outbound record never posts a second message.
    op.execute(f"""
        CREATE TABLE {s}.deliveries (
            outbound_event_id    uuid        PRIMARY KEY,
            project_id           text        NOT NULL,
            run_id               uuid        NOT NULL,
            channel_type         text        NOT NULL,
            chat_id              text        NOT NULL,
            state                text        NOT NULL
                CHECK (state IN ('sending', 'sent', 'failed', 'expired')),
            provider_message_ids text[]      NOT NULL DEFAULT '{{}}',
            attempts             integer     NOT NULL DEFAULT 0,
            started_at           timestamptz NOT NULL DEFAULT now(),
            finished_at          timestamptz
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    for table in ("deliveries", "inbound_records"):
        op.execute(f"DROP TABLE {s}.{table}")
