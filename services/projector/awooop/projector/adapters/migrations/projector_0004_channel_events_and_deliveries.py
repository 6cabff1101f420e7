"""Read model `channel_events`, and the thread, buttons, edits and delivery of
`outbound_messages`.

`channel_events` has one row per ingress event (a message, a button press, an ignored,
duplicate or rejected record), keyed by its `event_id`, with what the runtime said
about a message. Every column but the keys may be null: the runtime's word on a
message can be projected before the message itself. `outcome` is generated from the
columns by the rule of the fold's `outcome_of`, so no event writes it and arrival
order cannot change it.

`outbound_messages` gains the request's thread, reply, button labels and edit, and the
delivery a bridge reports. A report may be projected before its request, so the
columns only the request has become nullable.

Tenant-scoped like `runs` (projector_0001): FORCE row-level security, the projector
writes for the batch's tenants, `awooop_api` reads one tenant; `project_id` leads every
index. No column has a default drawn from the clock or a sequence.
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0004"
down_revision = "projector_0003"
branch_labels = None
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("channel_events",)

_OUTCOME = """CASE kind
        WHEN 'rejected' THEN 'rejected'
        WHEN 'duplicate' THEN 'duplicate_of'
        WHEN 'ignored' THEN 'ignored'
        WHEN 'button' THEN 'button_pressed'
        WHEN 'message' THEN CASE
            WHEN run_id IS NOT NULL THEN 'run_started'
            WHEN busy_with IS NOT NULL THEN 'busy'
            WHEN queued_on IS NOT NULL THEN 'queued'
            ELSE 'received' END
        END"""


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.channel_events (
            project_id          text        NOT NULL,
            event_id            uuid        NOT NULL,
            kind                text
                CHECK (kind IN ('message', 'button', 'ignored', 'duplicate', 'rejected')),
            channel_type        text,
            provider_event_id   text,
            platform_subject_id text,
            chat_id             text,
            thread_id           text,
            message_id          text,
            display_text        text,
            reason              text,
            code                text,
            record_key          text,
            duplicate_of        uuid,
            record_partition    integer,
            record_offset       bigint,
            received_at         timestamptz,
            occurred_at         timestamptz,
            run_id              uuid,
            queued_on           uuid,
            busy_with           uuid,
            outcome             text GENERATED ALWAYS AS ({_OUTCOME}) STORED,
            PRIMARY KEY (project_id, event_id)
        )""")
    newest = "occurred_at DESC, event_id DESC"
    op.execute(f"CREATE INDEX channel_events_newest ON {s}.channel_events (project_id, {newest})")
    op.execute(
        f"CREATE INDEX channel_events_by_outcome ON {s}.channel_events "
        f"(project_id, outcome, {newest})"
    )
    op.execute(
        f"CREATE INDEX channel_events_by_provider_event ON {s}.channel_events "
        "(project_id, provider_event_id text_pattern_ops)"
    )
    for column in ("queued_on", "busy_with", "duplicate_of"):
        op.execute(
            f"CREATE INDEX channel_events_by_{column} ON {s}.channel_events "
            f"(project_id, {column}) WHERE {column} IS NOT NULL"
        )
    for table in READ_MODELS:
        op.execute(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {s}.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"""
            CREATE POLICY projector_batch_tenants ON {s}.{table} TO CURRENT_USER
            USING ({TENANTS_POLICY_SQL}) WITH CHECK ({TENANTS_POLICY_SQL})""")
        op.execute(f"""
            CREATE POLICY api_request_tenant ON {s}.{table} FOR SELECT TO {API_ROLE}
            USING ({TENANT_POLICY_SQL})""")
    tables = ", ".join(f"{s}.{name}" for name in READ_MODELS)
    op.execute(f"GRANT SELECT ON {tables} TO {API_ROLE}")

    op.execute(f"""
        ALTER TABLE {s}.outbound_messages
            ALTER COLUMN text DROP NOT NULL,
            ALTER COLUMN deliver_before DROP NOT NULL,
            ALTER COLUMN occurred_at DROP NOT NULL,
            ADD COLUMN thread_id            text,
            ADD COLUMN reply_to             text,
            ADD COLUMN button_labels        text[],
            ADD COLUMN edit_of              uuid,
            ADD COLUMN status               text CHECK (status IN ('sent', 'failed', 'expired')),
            ADD COLUMN provider_message_ids text[],
            ADD COLUMN attempts             integer,
            ADD COLUMN code                 text,
            ADD COLUMN reason               text,
            ADD COLUMN reported_at          timestamptz,
            ADD COLUMN report_event_id      uuid""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        ALTER TABLE {s}.outbound_messages
            DROP COLUMN thread_id, DROP COLUMN reply_to, DROP COLUMN button_labels,
            DROP COLUMN edit_of, DROP COLUMN status, DROP COLUMN provider_message_ids,
            DROP COLUMN attempts, DROP COLUMN code, DROP COLUMN reason,
            DROP COLUMN reported_at, DROP COLUMN report_event_id""")
    for table in reversed(READ_MODELS):
        op.execute(f"DROP TABLE {s}.{table}")
