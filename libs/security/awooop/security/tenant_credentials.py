"""Resolving a project's credential reference to the secret it names, inside that project only.

A contract names where a secret is, never the secret (``CREDENTIAL_REFERENCE_PATTERN``):

- ``env:NAME``: the environment variable ``AWOOOP_TENANT_<PROJECT>_<NAME>``, PROJECT being
  the project id upper-cased with ``-`` turned into ``_``;
- ``file:NAME``: the file ``<secrets_root>/<project>/<NAME>``;
- ``k8s:SECRET/KEY``: the file ``<secrets_root>/<project>/<SECRET>/<KEY>``, as Kubernetes
  mounts a secret's keys.

A file's content loses one trailing newline. Invariants: a reference resolves inside its
own project's namespace or not at all (the reference grammar has no slash in a name and no
leading dot, and the resolved file, symlinks followed, must lie in the project's folder);
an error names the reference and the project, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from awooop.contracts.families.fields import CREDENTIAL_REFERENCE_PATTERN
from awooop.contracts.records.envelope import PROJECT_ID_PATTERN

ENV_PREFIX = "AWOOOP_TENANT_"
_REFERENCE = re.compile(CREDENTIAL_REFERENCE_PATTERN)
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)


class CredentialMissing(ValueError):
    """A reference that resolves to nothing: malformed, absent, empty, unreadable or
    outside its project. `reason` names the reference and the project, never a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def env_variable_name(project_id: str, name: str) -> str:
    """The environment variable an ``env:NAME`` reference of `project_id` reads."""
    return f"{ENV_PREFIX}{project_id.upper().replace('-', '_')}_{name}"


def resolve_credential(
    project_id: str,
    reference: str,
    *,
    env: Mapping[str, str],
    secrets_root: Path | None,
    other_projects: Iterable[str] = (),
) -> str:
    """The secret `reference` names in `project_id`'s namespace.

    `env` is the environment to read (``os.environ`` in a service); `secrets_root` the
    folder holding one folder of mounted secrets per project (``None``: no files).
    `other_projects` are the projects the service knows: the variable naming is not
    one-to-one (``acme`` + ``env:PROD_KEY`` and ``acme-prod`` + ``env:KEY`` both read
    ``AWOOOP_TENANT_ACME_PROD_KEY``), so an ``env:`` reference whose variable another
    known project could also name is refused rather than read.
    Raises `CredentialMissing` when the project id or the reference is malformed, or
    the secret is absent, empty, unreadable, ambiguous or would lie outside the
    project's folder.
    """
    if not _PROJECT_ID.fullmatch(project_id):
        raise CredentialMissing(f"project id {project_id!r} is malformed")
    if not _REFERENCE.fullmatch(reference):
        # A malformed reference may be a secret pasted in the wrong field: never echo it.
        raise CredentialMissing(
            f"a credential reference of project {project_id!r} is malformed "
            "(expected env:NAME, file:NAME or k8s:SECRET/KEY)"
        )
    where = f"credential {reference!r} of project {project_id!r}"
    kind, _, name = reference.partition(":")
    if kind == "env":
        variable = env_variable_name(project_id, name)
        for other in other_projects:
            theirs = env_variable_name(other, "")
            if other != project_id and variable.startswith(theirs):
                raise CredentialMissing(
                    f"{where}: {variable} could also be project {other!r}'s; "
                    "use a file: or k8s: reference"
                )
        value = env.get(variable, "")
        if not value:
            raise CredentialMissing(f"{where}: {variable} is unset or empty")
        return value
    if secrets_root is None:
        raise CredentialMissing(f"{where}: no secrets folder is configured")
    return _read_secret_file(secrets_root / project_id, name.split("/"), where)


def _read_secret_file(project_dir: Path, parts: list[str], where: str) -> str:
    try:
        base = project_dir.resolve(strict=True)
        path = project_dir.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        raise CredentialMissing(f"{where}: no such secret file") from None
    if not path.is_relative_to(base) or path == base:
        raise CredentialMissing(f"{where}: the file lies outside the project's folder")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise CredentialMissing(f"{where}: the secret file cannot be read") from None
    value = text.removesuffix("\r\n") if text.endswith("\r\n") else text.removesuffix("\n")
    if not value:
        raise CredentialMissing(f"{where}: the secret file is empty")
    return value
