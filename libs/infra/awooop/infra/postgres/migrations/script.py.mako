"""${message}"""

from alembic import context, op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    schema = context.config.attributes["schema"]


def downgrade() -> None:
    schema = context.config.attributes["schema"]
