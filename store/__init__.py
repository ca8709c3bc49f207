"""Direct-statement primitives, one module per domain: the only place statements of the
direct path (core/direct/) are declared.

Every function here takes `db: Direct` first and runs inside the caller's transaction:
it never begins, commits, publishes or touches a session. Services compose these into
use cases (see docs/architecture.md, "Data access").
"""
