"""Read models `runs` and `timeline`, tenant-scoped by FORCE row-level security.

The projector's role owns the schema and writes through a policy on the batch's
tenant list (`app.project_ids`); the query API's role `awooop_api` only reads,
through a policy on one tenant (`app.project_id`). `project_id` leads every
index. No column has a default drawn from the clock or a sequence: the rows are
a pure function of the events.
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0001"
down_revision = None
branch_labels = ("projector",)
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("runs", "timeline")


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.runs (
            project_id          text        NOT NULL,
            run_id              uuid        NOT NULL,
            state               text,
            last_stream_seq     integer     NOT NULL DEFAULT 0,
            agent_id            text,
            platform_subject_id text,
            chat_id             text,
            channel_type        text,
            mode                text,
            revision            text,
            started_at          timestamptz,
            completed_at        timestamptz,
            reply               text,
            suppressed          boolean,
            error_code          text,
            trigger_text        text,
            PRIMARY KEY (project_id, run_id)
        )""")
    op.execute(f"CREATE INDEX runs_newest ON {s}.runs (project_id, started_at DESC, run_id DESC)")
    op.execute(f"""
        CREATE TABLE {s}.timeline (
            project_id  text        NOT NULL,
            run_id      uuid        NOT NULL,
            event_id    uuid        NOT NULL,
            occurred_at timestamptz NOT NULL,
            event_type  text        NOT NULL,
            stream_type text        NOT NULL,
            stream_id   text        NOT NULL,
            stream_seq  integer     NOT NULL,
            actor       text        NOT NULL,
            summary     jsonb       NOT NULL,
            PRIMARY KEY (project_id, run_id, event_id)
        )""")
    for table in READ_MODELS:
        op.execute(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {s}.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"""
            CREATE POLICY projector_batch_tenants ON {s}.{table} TO CURRENT_USER
            USING ({TENANTS_POLICY_SQL}) WITH CHECK ({TENANTS_POLICY_SQL})""")
        op.execute(f"""
            CREATE POLICY api_request_tenant ON {s}.{table} FOR SELECT TO {API_ROLE}
            USING ({TENANT_POLICY_SQL})""")
    op.execute(f"GRANT USAGE ON SCHEMA {s} TO {API_ROLE}")
    op.execute(f"GRANT SELECT ON {s}.runs, {s}.timeline TO {API_ROLE}")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"REVOKE USAGE ON SCHEMA {s} FROM {API_ROLE}")
    for table in reversed(READ_MODELS):
        op.execute(f"DROP TABLE {s}.{table}")
