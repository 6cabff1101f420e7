"""A reading service's copy of the contracts: every revision it folded from the topic."""

from alembic import context, op

revision = "contracts_0001"
down_revision = None
branch_labels = ("contracts",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    # `refusal` holds why this service never uses the revision (a signature its key
    # ring refused); the state is what the approval service decided.
    op.execute(f"""
        CREATE TABLE {s}.contract_revisions (
            project_id  text        NOT NULL,
            contract_id text        NOT NULL,
            revision    integer     NOT NULL,
            family      text        NOT NULL,
            body        jsonb       NOT NULL,
            state       text        NOT NULL
                CHECK (state IN ('draft', 'published', 'active', 'retired')),
            body_sha256 text,
            signature   jsonb,
            refusal     text,
            activated_at timestamptz,
            folded_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (project_id, contract_id, revision)
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.contract_revisions")
