"""Which project holds each bot: one row per active channel_binding of it.

The rows of bindings activated before this revision are made from the contract
streams already in the event store, folded as the service folds them.
"""

import sqlalchemy as sa
from alembic import context, op

from awooop.approval.adapters.channel_bots import held

revision = "approval_0003"
down_revision = "approval_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.channel_bots (
            bot         text NOT NULL,
            project_id  text NOT NULL,
            contract_id text NOT NULL,
            PRIMARY KEY (bot, project_id, contract_id)
        )""")
    op.execute(f"CREATE INDEX channel_bots_contract ON {s}.channel_bots (project_id, contract_id)")
    stored = op.get_bind().execute(
        sa.text(
            f"SELECT stream_id, data FROM {s}.events WHERE stream_type = 'contract' "
            "ORDER BY stream_id, stream_seq"
        )
    )
    for bot, project_id, contract_id in held((row[0], bytes(row[1])) for row in stored):
        op.get_bind().execute(
            sa.text(f"INSERT INTO {s}.channel_bots VALUES (:bot, :project, :contract)"),
            {"bot": bot, "project": project_id, "contract": contract_id},
        )


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.channel_bots")
