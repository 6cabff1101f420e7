"""A process's readiness: ready once started, until any named condition holds it back."""

from __future__ import annotations

from awooop.infra.logging import get_logger

log = get_logger(__name__)


class Readiness:
    """Named reasons for being unready (`outage`, `broker-epoch`, …); ready when none remain."""

    def __init__(self) -> None:
        self._started = False
        self._reasons: dict[str, str] = {}

    def started(self) -> None:
        self._started = True

    def restarting(self) -> None:
        """Unready, as before the first start, with every earlier reason forgotten."""
        self._started = False
        self._reasons.clear()
        log.info("restarting")

    def hold(self, reason: str, detail: str = "") -> None:
        if reason not in self._reasons:
            log.warning("unready", reason=reason, detail=detail)
        self._reasons[reason] = detail

    def release(self, reason: str) -> None:
        if self._reasons.pop(reason, None) is not None:
            log.info("ready_again", reason=reason)

    @property
    def ready(self) -> bool:
        return self._started and not self._reasons

    @property
    def reasons(self) -> dict[str, str]:
        return dict(self._reasons)
