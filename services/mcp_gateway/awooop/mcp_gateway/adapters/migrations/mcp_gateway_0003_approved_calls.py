"""Approved calls: the approval that released a held call, its stream's next event, and
every approval token ever accepted.

`tool_calls.approval_id` names the approval whose token let a held call through gate 5
(or was refused there); `next_stream_seq` is the `stream_seq` of the call's next event
on its `tool_call` stream: 1 for a call never held, 2 once `gateway.approval_required`
took seq 1. `approval_tokens_used` is the single-use guard of approval tokens: a
token's `jti` (`token_id`) is inserted, `ON CONFLICT DO NOTHING`, in the transaction
that lets its call through, so a token is accepted once, ever.
"""

from alembic import context, op

revision = "mcp_gateway_0003"
down_revision = "mcp_gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"ALTER TABLE {s}.tool_calls ADD COLUMN approval_id uuid")
    op.execute(
        f"ALTER TABLE {s}.tool_calls ADD COLUMN next_stream_seq integer NOT NULL DEFAULT 1 "
        "CHECK (next_stream_seq >= 1)"
    )
    # Calls held before this revision already spent seq 1 on gateway.approval_required.
    op.execute(f"UPDATE {s}.tool_calls SET next_stream_seq = 2 WHERE status = 'awaiting_approval'")
    op.execute(f"""
        CREATE TABLE {s}.approval_tokens_used (
            token_id    text        PRIMARY KEY,
            call_id     text        NOT NULL,
            approval_id uuid        NOT NULL,
            used_at     timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.approval_tokens_used")
    op.execute(f"ALTER TABLE {s}.tool_calls DROP COLUMN next_stream_seq")
    op.execute(f"ALTER TABLE {s}.tool_calls DROP COLUMN approval_id")
