"""What the runtime keeps of each approval: the outbound event that posted its request
(so later messages edit it in place), the request's text, the votes so far and the
decision, and the last position of the approval's stream it took in."""

from alembic import context, op

revision = "runtime_0007"
down_revision = "runtime_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.approval_messages (
            approval_id         uuid PRIMARY KEY,
            project_id          text NOT NULL,
            run_id              uuid NOT NULL,
            call_id             text NOT NULL,
            last_seq            integer NOT NULL,
            outcome             text CHECK (outcome IN ('granted', 'denied')),
            request_event_id    uuid,
            request_text        text NOT NULL,
            expires_at          timestamptz,
            approvals_required  integer NOT NULL,
            rejections_required integer NOT NULL,
            approved_by         jsonb NOT NULL,
            rejected_by         jsonb NOT NULL
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.approval_messages")
