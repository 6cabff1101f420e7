"""Read models `run_steps`, `outbound_messages`, `budget_state`, `budget_trips`, and the
view `budget_usage` (decision 0053).

The tables are tenant-scoped like `runs`: FORCE row-level security, the projector
writes for the batch's tenants, `awooop_api` reads one tenant. No column has a
default drawn from the clock or a sequence.

`budget_usage` sums the settled usage of `run_steps` per agent (from `runs`) and
UTC day or month. It stores nothing, so it is as pure as the two tables it reads;
`security_invoker` makes it read them with the querying role's own policies (a view
otherwise reads as its owner, whose policy is the projector's).
"""

from alembic import context, op

from awooop.infra.postgres.tenant import TENANT_POLICY_SQL, TENANTS_POLICY_SQL

revision = "projector_0003"
down_revision = "projector_0002"
branch_labels = None
depends_on = None

API_ROLE = "awooop_api"
READ_MODELS = ("run_steps", "outbound_messages", "budget_state", "budget_trips")

_USAGE_BRANCH = """
    SELECT s.project_id, r.agent_id, '{period}'::text AS period, s.{column} AS period_key,
           count(*)::integer AS steps, sum(s.tokens_in)::bigint AS tokens_in,
           sum(s.tokens_out)::bigint AS tokens_out,
           sum(s.tokens_in + s.tokens_out)::bigint AS tokens, sum(s.cost) AS cost
    FROM {s}.run_steps s
    LEFT JOIN {s}.runs r ON r.project_id = s.project_id AND r.run_id = s.run_id
    GROUP BY s.project_id, r.agent_id, s.{column}"""


def upgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"""
        CREATE TABLE {s}.run_steps (
            project_id      text        NOT NULL,
            run_id          uuid        NOT NULL,
            number          integer     NOT NULL,
            model           text        NOT NULL,
            tokens_in       bigint      NOT NULL,
            tokens_out      bigint      NOT NULL,
            cost            numeric     NOT NULL,
            latency_ms      bigint      NOT NULL,
            schema_retries  integer     NOT NULL,
            reserved_tokens bigint      NOT NULL,
            outcome         text        NOT NULL
                CHECK (outcome IN ('tool_call', 'reply', 'failed')),
            event_id        uuid        NOT NULL,
            occurred_at     timestamptz NOT NULL,
            day             text        NOT NULL,
            month           text        NOT NULL,
            PRIMARY KEY (project_id, run_id, number)
        )""")
    op.execute(f"CREATE INDEX run_steps_by_day ON {s}.run_steps (project_id, day)")
    op.execute(f"CREATE INDEX run_steps_by_month ON {s}.run_steps (project_id, month)")
    op.execute(f"""
        CREATE TABLE {s}.outbound_messages (
            project_id     text        NOT NULL,
            run_id         uuid        NOT NULL,
            event_id       uuid        NOT NULL,
            kind           text        NOT NULL
                CHECK (kind IN ('interim', 'final', 'approval_request', 'error')),
            channel_type   text        NOT NULL,
            chat_id        text        NOT NULL,
            text           text        NOT NULL,
            deliver_before timestamptz NOT NULL,
            occurred_at    timestamptz NOT NULL,
            PRIMARY KEY (project_id, run_id, event_id)
        )""")
    op.execute(f"""
        CREATE TABLE {s}.budget_state (
            project_id      text        NOT NULL PRIMARY KEY,
            killed          boolean     NOT NULL,
            changed_at      timestamptz NOT NULL,
            event_type      text        NOT NULL,
            event_id        uuid        NOT NULL,
            code            text,
            reason          text        NOT NULL,
            actor           text        NOT NULL,
            budget_revision text,
            last_stream_seq integer     NOT NULL
        )""")
    op.execute(f"""
        CREATE TABLE {s}.budget_trips (
            project_id      text        NOT NULL,
            event_id        uuid        NOT NULL,
            scope_key       text        NOT NULL,
            scope           text        NOT NULL,
            period          text        NOT NULL,
            period_key      text        NOT NULL,
            budget_revision text        NOT NULL,
            occurred_at     timestamptz NOT NULL,
            PRIMARY KEY (project_id, event_id)
        )""")
    op.execute(f"CREATE INDEX budget_trips_by_period ON {s}.budget_trips (project_id, period_key)")
    for table in READ_MODELS:
        op.execute(f"ALTER TABLE {s}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {s}.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"""
            CREATE POLICY projector_batch_tenants ON {s}.{table} TO CURRENT_USER
            USING ({TENANTS_POLICY_SQL}) WITH CHECK ({TENANTS_POLICY_SQL})""")
        op.execute(f"""
            CREATE POLICY api_request_tenant ON {s}.{table} FOR SELECT TO {API_ROLE}
            USING ({TENANT_POLICY_SQL})""")
    branches = " UNION ALL ".join(
        _USAGE_BRANCH.format(s=s, period=period, column=column)
        for period, column in (("daily", "day"), ("monthly", "month"))
    )
    op.execute(f"CREATE VIEW {s}.budget_usage WITH (security_invoker = true) AS {branches}")
    tables = ", ".join(f"{s}.{name}" for name in (*READ_MODELS, "budget_usage"))
    op.execute(f"GRANT SELECT ON {tables} TO {API_ROLE}")


def downgrade() -> None:
    s = '"' + context.config.attributes["schema"] + '"'
    op.execute(f"DROP VIEW {s}.budget_usage")
    for table in reversed(READ_MODELS):
        op.execute(f"DROP TABLE {s}.{table}")
