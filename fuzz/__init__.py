"""Schemathesis against the real service: `make fuzz` (see fuzz/__main__.py)."""
