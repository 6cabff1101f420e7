"""Read model `mcp_calls`: one row per tool call a run asked for, with the gateway's
decision on it (domain/mcp_calls.py).

Every column but the keys and `status` may be null: the gateway's word on a call can be
projected before the runtime's request, and a request before any word. `arguments` is
the gateway's redacted display form (the agent's own arguments are never kept);
`redactions` counts the values redaction replaced, per kind.

Tenant-scoped like `channel_events` (projector_0004): FORCE row-level security, the
projector writes for the batch's tenants, `awooop_api` reads one tenant; `project_id`
leads every index. No column has a default drawn from the clock or a sequence. Calls
made before this migration appear after `awooop projector rebuild`.
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0005"
down_revision = "projector_0004"
branch_labels = None
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("mcp_calls",)

NEWEST = "coalesce(requested_at, decided_at) DESC, call_id DESC"
"""The listing's order: when the call was asked for (else decided), then its id."""


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.mcp_calls (
            project_id       text             NOT NULL,
            call_id          text             NOT NULL,
            run_id           uuid,
            tool             text,
            argument_hash    text,
            arguments        jsonb,
            action_hash      text,
            requested_at     timestamptz,
            status           text             NOT NULL CHECK (status IN
                ('requested', 'awaiting_approval', 'succeeded', 'blocked', 'failed')),
            gate             integer          CHECK (gate BETWEEN 1 AND 5),
            code             text,
            reason           text,
            retry_after      double precision,
            would_need       text,
            redactions       jsonb,
            latency_ms       double precision,
            transient        boolean,
            revisions        text[],
            decided_at       timestamptz,
            decided_event_id uuid,
            PRIMARY KEY (project_id, call_id)
        )""")
    op.execute(f"CREATE INDEX mcp_calls_newest ON {s}.mcp_calls (project_id, {NEWEST})")
    for column in ("status", "tool"):
        op.execute(
            f"CREATE INDEX mcp_calls_by_{column} ON {s}.mcp_calls (project_id, {column}, {NEWEST})"
        )
    op.execute(f"CREATE INDEX mcp_calls_by_run ON {s}.mcp_calls (project_id, run_id)")
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


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    for table in reversed(READ_MODELS):
        op.execute(f"DROP TABLE {s}.{table}")
