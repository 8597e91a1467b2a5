"""Storage: calls, legs, the channel-event log, agents, tokens and the outbox."""

from __future__ import annotations

from ctibridge.storage.sql import SqlStorage

__all__ = ["SqlStorage", "open_storage"]


def open_storage(url: str, *, echo: bool = False) -> SqlStorage:
    """Storage at a SQLAlchemy URL (``sqlite+aiosqlite:///path`` or
    ``postgresql+asyncpg://user@host/db``); call ``start()`` before use.

    StorageError at once when the URL is unusable (unknown database, malformed)."""
    return SqlStorage(url, echo=echo)
