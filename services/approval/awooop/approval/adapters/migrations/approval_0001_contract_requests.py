"""The answers of contract commands by request id, so a retried command appends nothing.

A row is written in the transaction that appends the command's event, so it exists
exactly when the event does; `fingerprint` binds the id to one command and body.
"""

from alembic import context, op

revision = "approval_0001"
down_revision = None
branch_labels = ("approval",)
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.contract_requests (
            project_id   text        NOT NULL,
            request_id   text        NOT NULL,
            fingerprint  text        NOT NULL,
            status       integer     NOT NULL,
            answer       jsonb       NOT NULL,
            recorded_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (project_id, request_id)
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.contract_requests")
