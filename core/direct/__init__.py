"""The direct path: Core statements compiled once and sent straight to the driver,
bypassing the ORM's unit of work and SQLAlchemy's execution path.

- statement.py: `Statement`, a Core statement compiled once per dialect.
- executor.py: `Direct`, which sends statements on one transaction's connection, and
  `direct(session)`, the one bridge from a session's transaction to it.
- pools.py: `Transactions`, transactions of their own on a pool, for use cases whose
  every statement is a direct one (checkout, the per-request user read).

Which functions use it, and why, is the data-access rule of docs/architecture.md.
"""

from core.direct.executor import Direct, direct
from core.direct.pools import Transactions
from core.direct.statement import Row, Statement

__all__ = ["Direct", "Row", "Statement", "Transactions", "direct"]
