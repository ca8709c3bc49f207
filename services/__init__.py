"""Business logic, one module per domain. Services own the transactions."""
