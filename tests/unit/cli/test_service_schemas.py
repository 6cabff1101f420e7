"""`awooop migrate` and the broker recovery read every service's schema from its
`schema` module: the same branches, folders and roles its `app.spec()` runs with, and
without loading any service's code.

Break caught: a service whose `spec()` names a branch or folder its `schema` module
does not (a migration `awooop migrate` would never run, and the service refusing to
start with `E-SCHEMA-BEHIND`), or a `schema` module that imports its service's code,
putting the MCP SDK and the OpenAI client back on every `awooop migrate`.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from awooop.cli.migrate import SERVICE_APPS, SERVICE_SCHEMAS, service_schemas
from awooop.contracts.registries.service_names import SERVICES

pytestmark = pytest.mark.unit

PROBE = """
import json, sys
from awooop.cli.migrate import service_schemas
names = [schema.service for schema in service_schemas()]
print(json.dumps({"services": names, "loaded": sorted(sys.modules)}))
"""

SERVICE_CODE = ("mcp", "openai", "fastapi", "aiokafka", "awooop.infra.runner")
"""What a service loads to run and no schema needs."""


def test_every_service_has_a_schema_and_only_services_do() -> None:
    assert sorted(SERVICE_SCHEMAS) == sorted(SERVICES)
    assert [schema.service for schema in service_schemas()] == list(SERVICE_SCHEMAS)


@pytest.mark.parametrize("service", sorted(SERVICE_APPS))
def test_the_app_runs_with_the_schema_its_schema_module_names(service: str) -> None:
    spec = importlib.import_module(SERVICE_APPS[service]).spec()
    schema = importlib.import_module(SERVICE_SCHEMAS[service]).SCHEMA
    assert spec.service == schema.service == service
    assert tuple(spec.branches) == schema.branches
    assert tuple(spec.migrations) == schema.migrations
    assert tuple(spec.extra_roles) == schema.extra_roles
    assert all(folder.is_dir() for folder in schema.migrations), schema.migrations


def test_reading_every_schema_loads_no_service_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["services"] == list(SERVICE_SCHEMAS)
    loaded = set(answer["loaded"])
    apps = sorted(loaded & set(SERVICE_APPS.values()))
    assert not apps, f"reading the schemas imported {apps}"
    inside = tuple(f"{name}." for name in SERVICE_CODE)
    heavy = sorted(m for m in loaded if m in SERVICE_CODE or m.startswith(inside))
    assert not heavy, f"reading the schemas imported {heavy[:10]}"
