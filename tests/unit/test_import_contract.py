"""The import contract holds on the tree, and breaks when a forbidden import appears.

Each breaking case writes a uniquely named probe module into a real package folder
(import-linter reads the installed namespace portions, so a copy elsewhere would not be
seen), runs lint-imports without its cache, and deletes the probe whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

SERVICES_CONTRACT = "services never import each other"
LIBRARIES_CONTRACT = "libraries never import services or the CLI"
PURE_CONTRACT = "contracts are pure"
DOMAIN_CONTRACT = "domain code is pure"
CONTRACTS = (SERVICES_CONTRACT, LIBRARIES_CONTRACT, PURE_CONTRACT, DOMAIN_CONTRACT)


def lint_imports() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lint_imports_with_probe(package_dir: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports while a probe module holding ``source`` sits in ``package_dir``."""
    assert (package_dir / "__init__.py").is_file(), f"{package_dir} is not a package folder"
    probe = package_dir / f"_contract_probe_{uuid.uuid4().hex}.py"
    try:
        probe.write_text(source, encoding="utf-8")
        return lint_imports()
    finally:
        probe.unlink(missing_ok=True)
        assert not probe.exists(), f"probe {probe} was left in the tree"


def broken_contracts(result: subprocess.CompletedProcess[str]) -> set[str]:
    output = result.stdout + result.stderr
    return {name for name in CONTRACTS if f"{name} BROKEN" in output}


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout


def test_a_service_importing_another_service_breaks_the_contract() -> None:
    result = lint_imports_with_probe(
        ROOT / "services/runtime/awooop/runtime", "import awooop.ingress\n"
    )
    assert result.returncode != 0, result.stdout
    assert broken_contracts(result) == {SERVICES_CONTRACT}, result.stdout
    assert "awooop.runtime is not allowed to import awooop.ingress" in result.stdout


def test_a_library_importing_a_service_breaks_the_contract() -> None:
    result = lint_imports_with_probe(ROOT / "libs/infra/awooop/infra", "import awooop.runtime\n")
    assert result.returncode != 0, result.stdout
    assert broken_contracts(result) == {LIBRARIES_CONTRACT}, result.stdout
    assert "awooop.infra is not allowed to import awooop.runtime" in result.stdout


def test_a_library_importing_the_cli_breaks_the_contract() -> None:
    result = lint_imports_with_probe(ROOT / "libs/security/awooop/security", "import awooop.cli\n")
    assert result.returncode != 0, result.stdout
    assert broken_contracts(result) == {LIBRARIES_CONTRACT}, result.stdout
    assert "awooop.security is not allowed to import awooop.cli" in result.stdout


def test_contracts_importing_infra_breaks_purity() -> None:
    result = lint_imports_with_probe(
        ROOT / "libs/contracts/awooop/contracts", "import awooop.infra\n"
    )
    assert result.returncode != 0, result.stdout
    assert broken_contracts(result) == {PURE_CONTRACT}, result.stdout
    assert "awooop.contracts is not allowed to import awooop.infra" in result.stdout


@pytest.mark.parametrize(
    ("package", "module"),
    [
        ("services/runtime/awooop/runtime/domain", "asyncpg"),
        ("services/runtime/awooop/runtime/domain", "awooop.infra.events"),
        ("services/ingress/awooop/ingress/domain", "httpx"),
        ("services/mcp_gateway/awooop/mcp_gateway/domain", "mcp"),
        ("services/projector/awooop/projector/domain", "sqlalchemy"),
        ("services/projector/awooop/projector/domain", "aiokafka"),
        ("services/ingress/awooop/ingress/domain", "redis"),
        ("services/mcp_gateway/awooop/mcp_gateway/domain", "faststream"),
        ("services/approval/awooop/approval/domain", "asyncpg"),
    ],
)
def test_domain_code_importing_io_or_infra_breaks_purity(package: str, module: str) -> None:
    result = lint_imports_with_probe(ROOT / package, f"import {module}\n")
    assert result.returncode != 0, result.stdout
    assert broken_contracts(result) == {DOMAIN_CONTRACT}, result.stdout
    domain = package.split("/", 2)[2].replace("/", ".")
    top = module.split(".")[0] if not module.startswith("awooop.") else "awooop.infra"
    assert f"{domain} is not allowed to import {top}" in result.stdout, result.stdout


def test_every_consuming_service_builds_its_processor_on_the_one_base() -> None:
    """Break caught: a service that grows its own `BatchProcessor` beside the base, so
    "where is event X handled" has two answers again."""
    from awooop.infra.processor import EventProcessor
    from awooop.ingress.handlers import IngressProcessor
    from awooop.mcp_gateway.processor import GatewayProcessor
    from awooop.projector.handlers import ReadModelProjector
    from awooop.runtime.handlers import RuntimeProcessor

    for processor in (IngressProcessor, RuntimeProcessor, ReadModelProjector, GatewayProcessor):
        assert issubclass(processor, EventProcessor), processor
