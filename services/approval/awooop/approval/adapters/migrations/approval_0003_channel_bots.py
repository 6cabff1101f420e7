"""Which project holds each bot: one row per active channel_binding of it.

The rows of bindings activated before this revision are made from the contract
streams already in the event store, folded as the service folds them; a bot two
projects bound goes to the one that bound it first, as in the readers' fold. What is
left out (a stream that cannot be read, a binding of a bot held first elsewhere) is
logged, and the upgrade goes on.
"""

import logging

import sqlalchemy as sa
from alembic import context, op

from awooop.approval.adapters.contract_claims import held_in

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
    found = held_in(op.get_bind(), context.config.attributes["schema"])
    for bot, project_id, contract_id in found.bots:
        op.get_bind().execute(
            sa.text(f"INSERT INTO {s}.channel_bots VALUES (:bot, :project, :contract)"),
            {"bot": bot, "project": project_id, "contract": contract_id},
        )
    for reason in [*found.unreadable, *found.lost_bots]:
        logging.getLogger("alembic.runtime.migration").warning("channel_bots: %s", reason)


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.channel_bots")
