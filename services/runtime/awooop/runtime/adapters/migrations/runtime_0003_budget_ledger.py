"""The budget ledger: one row per scope and period, each step's reservation, the kill switch.

The CHECK constraints are the last guard, never the mechanism: the reserving upsert
only writes a row whose limits still cover it, so a constraint violation means a bug.
"""

from alembic import context, op

revision = "runtime_0003"
down_revision = "runtime_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.budget_ledger (
            scope_key       text PRIMARY KEY,
            project_id      text NOT NULL,
            scope           text NOT NULL CHECK (scope IN ('tenant', 'agent', 'run')),
            subject         text NOT NULL,
            period          text NOT NULL CHECK (period IN ('run', 'daily', 'monthly')),
            period_key      text NOT NULL,
            limit_tokens    bigint,
            limit_cost      numeric,
            reserved_tokens bigint NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
            reserved_cost   numeric NOT NULL DEFAULT 0 CHECK (reserved_cost >= 0),
            settled_tokens  bigint NOT NULL DEFAULT 0 CHECK (settled_tokens >= 0),
            settled_cost    numeric NOT NULL DEFAULT 0 CHECK (settled_cost >= 0),
            tripped_at      timestamptz,
            CONSTRAINT budget_ledger_tokens_within_limit CHECK (
                limit_tokens IS NULL OR reserved_tokens + settled_tokens <= limit_tokens),
            CONSTRAINT budget_ledger_cost_within_limit CHECK (
                limit_cost IS NULL OR reserved_cost + settled_cost <= limit_cost)
        )""")
    op.execute(f"CREATE INDEX budget_ledger_project ON {s}.budget_ledger (project_id)")
    op.execute(f"""
        CREATE TABLE {s}.budget_reservations (
            run_id         uuid NOT NULL,
            step           integer NOT NULL,
            project_id     text NOT NULL,
            scope_keys     text[] NOT NULL,
            tokens         bigint NOT NULL CHECK (tokens >= 0),
            cost           numeric NOT NULL CHECK (cost >= 0),
            max_tokens     integer NOT NULL,
            state          text NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
            settled_tokens bigint,
            settled_cost   numeric,
            created_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, step)
        )""")
    op.execute(f"""
        CREATE TABLE {s}.budget_kills (
            project_id text PRIMARY KEY,
            killed     boolean NOT NULL,
            version    integer NOT NULL,
            reason     text,
            changed_at timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP TABLE {s}.budget_kills")
    op.execute(f"DROP TABLE {s}.budget_reservations")
    op.execute(f"DROP TABLE {s}.budget_ledger")
