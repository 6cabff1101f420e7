"""Read models `contracts` and `contract_revisions`, tenant-scoped like `runs`.

Folded from `awooop.contract.events.v1`: one row per contract of a project and one
per revision, with the revision's body, its lifecycle state and the result of
checking its publication signature. Same policies as projector_0001: the
projector writes for the batch's tenants, `awooop_api` reads one tenant. No
column has a default drawn from the clock or a sequence.
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0002"
down_revision = "projector_0001"
branch_labels = None
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("contracts", "contract_revisions")


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.contracts (
            project_id      text        NOT NULL,
            contract_id     text        NOT NULL,
            family          text,
            latest_revision integer     NOT NULL,
            active_revision integer,
            lifecycle       text,
            updated_at      timestamptz NOT NULL,
            last_stream_seq integer     NOT NULL,
            PRIMARY KEY (project_id, contract_id)
        )""")
    op.execute(
        f"CREATE INDEX contracts_by_family ON {s}.contracts (project_id, family, contract_id)"
    )
    op.execute(f"""
        CREATE TABLE {s}.contract_revisions (
            project_id      text        NOT NULL,
            contract_id     text        NOT NULL,
            revision        integer     NOT NULL,
            lifecycle       text        NOT NULL
                CHECK (lifecycle IN ('draft', 'published', 'active', 'retired')),
            body            jsonb,
            author          text,
            body_sha256     text,
            signature_kid   text,
            signature_alg   text,
            signature_check text,
            drafted_at      timestamptz,
            published_at    timestamptz,
            activated_at    timestamptz,
            retired_at      timestamptz,
            signers         text[]      NOT NULL,
            PRIMARY KEY (project_id, contract_id, revision)
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
    op.execute(f"GRANT SELECT ON {s}.contracts, {s}.contract_revisions TO {API_ROLE}")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    for table in reversed(READ_MODELS):
        op.execute(f"DROP TABLE {s}.{table}")
