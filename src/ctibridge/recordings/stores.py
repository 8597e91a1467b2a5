"""The recording store the settings ask for: ``recordings.store`` is ``local`` or ``s3``."""

from __future__ import annotations

from pathlib import Path

from ctibridge.config import RecordingsSettings
from ctibridge.errors import ConfigError
from ctibridge.recordings.base import RecordingStore
from ctibridge.recordings.local import LocalStore

__all__ = ["make_store"]


def make_store(settings: RecordingsSettings, data_dir: str) -> RecordingStore:
    """A ``LocalStore`` (``directory``, by default ``<data_dir>/recordings``) or an
    ``S3Store``. ConfigError when the ``s3`` store's library is not installed."""
    if settings.store == "s3":
        try:
            from ctibridge.recordings.s3 import S3Store
        except ImportError as exc:
            raise ConfigError(
                f"recordings.store = \"s3\" needs the s3 extra (pip install 'ctibridge[s3]'): {exc}"
            ) from exc
        return S3Store(settings)
    return LocalStore(settings.directory or str(Path(data_dir) / "recordings"))
