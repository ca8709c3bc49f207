"""identity columns compare byte for byte on MariaDB/MySQL

Revision ID: 0002
Revises: 0001

Under the server's default collation (`utf8mb4_general_ci`) `äda@example.com` equals
`ada@example.com`; `utf8mb4_bin` keeps them apart (docs/api.md, "Identities"). SQLite
already compares text byte for byte, so there this revision changes nothing.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (table, column, length, nullable): the columns models/ declare with `exact_string`.
COLUMNS = (
    ("users", "email", 254, False),
    ("email_verification_tokens", "token_hash", 64, False),
    ("refresh_tokens", "token_hash", 64, False),
    ("categories", "slug", 120, False),
    ("products", "slug", 120, False),
    ("discounts", "code", 50, False),
    ("orders", "idempotency_key", 255, True),
    ("orders", "payment_intent_id", 255, True),
    ("stripe_events", "id", 255, False),
)


def _on_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _modify(collation: str | None) -> None:
    """MODIFY each column to VARCHAR with `collation`, or with the table's default
    character set and collation when None; the unique indexes are rebuilt with it."""
    for table, column, length, nullable in COLUMNS:
        collate = f" CHARACTER SET utf8mb4 COLLATE {collation}" if collation else ""
        null = "NULL" if nullable else "NOT NULL"
        # Every name in the statement is one of the constants above, never input.
        op.execute(f"ALTER TABLE {table} MODIFY {column} VARCHAR({length}){collate} {null}")


def upgrade() -> None:
    if _on_mysql():
        _modify("utf8mb4_bin")


def downgrade() -> None:
    """Back to the table's default collation. Fails on a duplicate key when rows that
    only the binary collation kept apart (`ada@` and `äda@`) exist: those must be
    resolved by hand first."""
    if _on_mysql():
        _modify(None)
