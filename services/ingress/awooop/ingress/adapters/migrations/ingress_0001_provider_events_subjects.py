"""Ingress's own tables: the de-duplication record of provider events, and subjects."""

from alembic import context, op

revision = "ingress_0001"
down_revision = None
branch_labels = ("ingress",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    # The primary key is the de-duplication rule: a provider event becomes at
    # most one ingress event, whatever the bridges or the broker redeliver.
    op.execute(f"""
        CREATE TABLE {s}.provider_events (
            project_id          text        NOT NULL,
            channel_type        text        NOT NULL,
            provider_event_id   text        NOT NULL,
            event_id            uuid        NOT NULL UNIQUE,
            platform_subject_id text        NOT NULL,
            received_at         timestamptz NOT NULL,
            recorded_at         timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (project_id, channel_type, provider_event_id)
        )""")
    op.execute(f"""
        CREATE TABLE {s}.subjects (
            project_id          text        NOT NULL,
            platform_subject_id text        NOT NULL,
            channel_type        text        NOT NULL,
            first_seen_event_id uuid        NOT NULL,
            first_seen_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (project_id, platform_subject_id)
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    for table in ("subjects", "provider_events"):
        op.execute(f"DROP TABLE {s}.{table}")
