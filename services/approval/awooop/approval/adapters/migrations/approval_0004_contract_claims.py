"""What each active contract defines for its project: one row per claim.

The rows of contracts activated before this revision are made from the contract streams
already in the event store, folded as the service folds them; a claim two contracts
held goes to the one activated first, as in the readers' fold. What is left out is
logged (streams that cannot be read were logged by `approval_0003`), and the upgrade
goes on.
"""

import logging

import sqlalchemy as sa
from alembic import context, op

from awooop.approval.adapters.contract_claims import held_in

revision = "approval_0004"
down_revision = "approval_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.contract_claims (
            project_id  text NOT NULL,
            claim       text NOT NULL,
            contract_id text NOT NULL,
            PRIMARY KEY (project_id, claim)
        )""")
    op.execute(
        f"CREATE INDEX contract_claims_contract ON {s}.contract_claims (project_id, contract_id)"
    )
    found = held_in(op.get_bind(), context.config.attributes["schema"])
    for project_id, claim, contract_id in found.claims:
        op.get_bind().execute(
            sa.text(f"INSERT INTO {s}.contract_claims VALUES (:project, :claim, :contract)"),
            {"project": project_id, "claim": claim, "contract": contract_id},
        )
    for reason in found.lost_claims:
        logging.getLogger("alembic.runtime.migration").warning("contract_claims: %s", reason)


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.contract_claims")
