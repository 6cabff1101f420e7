"""A contract revision and its lifecycle.

A revision only moves forward through this table; a command in any other state is
refused with ``E-CONTRACT-STATE``::

    state       publish     sign              activate             retire
    draft       published   -                 -                    retired (abandoned)
    published   -           published (+1)    active (k signers)   retired (withdrawn)
    active      -           -                 -                    retired
    retired     -           -                 -                    -

Activating a revision also retires the one active before it (the activation names it
as ``superseded_revision``), so a contract has at most one active revision; being
superseded is being retired, not a state of its own. A body is fixed when its revision
is drafted: there is no edit, a change is a new draft, the contract's next revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from awooop.approval.domain.refusals import ContractStateForbids
from awooop.contracts.events.payloads.contract import PublicationSignature

RevisionState = Literal["draft", "published", "active", "retired"]
STATE_ORDER: dict[RevisionState, int] = {"draft": 0, "published": 1, "active": 2, "retired": 3}
"""The lifecycle order: a revision's state never moves to a lower rank."""


@dataclass(frozen=True)
class ContractRevision:
    """One revision: its body and author, how far it got, and who signed it."""

    number: int
    body: dict[str, Any]
    author: str
    state: RevisionState = "draft"
    body_sha256: str | None = None
    signature: PublicationSignature | None = None
    signers: tuple[str, ...] = ()

    @property
    def counted_signers(self) -> tuple[str, ...]:
        """The distinct signers that count toward activation: never the author."""
        return tuple(dict.fromkeys(s for s in self.signers if s != self.author))

    def require(self, state: RevisionState, done: str) -> None:
        """Refuse (E-CONTRACT-STATE) unless the revision is in ``state``."""
        if self.state != state:
            msg = f"revision {self.number} is {self.state}: only a {state} one can be {done}"
            raise ContractStateForbids(msg)
