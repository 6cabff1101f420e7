"""The approval process. In the walking skeleton it starts, provisions its schema and
event store, runs its relay, and answers /healthz and /readyz; it consumes nothing yet
(gate 5 and the approval flow come with the approval issue)."""

from __future__ import annotations

from awooop.infra.runner import ServiceSpec
from awooop.infra.service_main import run


def spec() -> ServiceSpec:
    return ServiceSpec(service="approval", topics=(), processor=None, branches=("store",))


def main() -> None:
    run(spec())


if __name__ == "__main__":
    main()
