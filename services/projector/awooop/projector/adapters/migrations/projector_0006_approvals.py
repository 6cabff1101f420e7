"""Read model `approvals`: one row per approval request of a held tool call, with its
votes and how it ended (domain/approvals.py); and `mcp_calls.retries`, the retried
attempts of an approved call.

Every column but the keys, the vote counts, `votes` and `state` may be null: a vote or a
decision can be projected in the batch before its request's. `arguments` is the gateway's
redacted display form as the request carries it; `votes` is a JSON array of the votes
(counted and refused), sorted by time then event id. The grant's token is never a
column: only its id (`token_id`, the `jti`) and its expiry.

Tenant-scoped like `mcp_calls` (projector_0005): FORCE row-level security, the projector
writes for the batch's tenants, `awooop_api` reads one tenant; `project_id` leads every
index. No column has a default drawn from the clock or a sequence. Requests made before
this migration appear after `awooop projector rebuild`.
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0006"
down_revision = "projector_0005"
branch_labels = None
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("approvals",)

NEWEST = "requested_at DESC, approval_id DESC"
"""The listing's order: when the request was made, then its id."""


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"ALTER TABLE {s}.mcp_calls ADD COLUMN retries integer CHECK (retries >= 1)")
    op.execute(f"""
        CREATE TABLE {s}.approvals (
            project_id          text        NOT NULL,
            approval_id         uuid        NOT NULL,
            run_id              uuid,
            call_id             text,
            tool                text,
            arguments           jsonb,
            argument_hash       text,
            action_hash         text,
            scope               text,
            mode                text,
            policy_revision     text,
            approvers           text[],
            approvals_required  integer,
            rejections_required integer,
            requester           text,
            expires_at          timestamptz,
            requested_at        timestamptz,
            approvals           integer     NOT NULL CHECK (approvals >= 0),
            rejections          integer     NOT NULL CHECK (rejections >= 0),
            votes               jsonb       NOT NULL CHECK (jsonb_typeof(votes) = 'array'),
            state               text        NOT NULL CHECK (state IN
                ('pending', 'granted', 'denied')),
            outcome_code        text,
            outcome_reason      text,
            decided_by          text[],
            decided_at          timestamptz,
            decided_event_id    uuid,
            token_id            text,
            token_expires_at    timestamptz,
            PRIMARY KEY (project_id, approval_id)
        )""")
    op.execute(f"CREATE INDEX approvals_newest ON {s}.approvals (project_id, {NEWEST})")
    op.execute(f"CREATE INDEX approvals_by_state ON {s}.approvals (project_id, state, {NEWEST})")
    op.execute(f"CREATE INDEX approvals_by_run ON {s}.approvals (project_id, run_id)")
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
    op.execute(f"ALTER TABLE {s}.mcp_calls DROP COLUMN retries")
