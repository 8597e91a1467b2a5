"""Structured logs and Prometheus metrics (names prefixed ``ctibridge_``)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "ACTIVE_CALLS",
    "CALLS",
    "CALL_EVENTS",
    "CHANNEL_EVENTS",
    "PBX_CONNECTED",
    "PBX_RECONNECTS",
    "REGISTRY",
    "STORAGE_FLUSH",
    "STORAGE_PENDING",
    "WS_CONNECTIONS",
    "WS_DROPPED",
    "JsonFormatter",
    "setup_logging",
]

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS = Counter(
    "ctibridge_calls",
    "Calls that ended, by direction and outcome (the end reason).",
    ["direction", "outcome"],
    registry=REGISTRY,
)
CALL_EVENTS = Counter(
    "ctibridge_call_events",
    "Call-card events published (created, ringing, answered, ...).",
    ["event"],
    registry=REGISTRY,
)
CHANNEL_EVENTS = Counter(
    "ctibridge_channel_events",
    "Channel events received from phone systems.",
    ["pbx"],
    registry=REGISTRY,
)
ACTIVE_CALLS = Gauge("ctibridge_active_calls", "Calls not ended yet.", registry=REGISTRY)
WS_CONNECTIONS = Gauge(
    "ctibridge_ws_connections", "Open agent WebSocket connections.", registry=REGISTRY
)
WS_DROPPED = Counter(
    "ctibridge_ws_dropped",
    "Agent WebSocket connections dropped because the client fell behind.",
    registry=REGISTRY,
)
STORAGE_FLUSH = Histogram(
    "ctibridge_storage_flush_seconds",
    "Time to write one batch of call changes.",
    registry=REGISTRY,
)
STORAGE_PENDING = Gauge(
    "ctibridge_storage_pending_calls",
    "Call changes waiting to be written (grows while the database is down).",
    registry=REGISTRY,
)
PBX_CONNECTED = Gauge(
    "ctibridge_pbx_connected",
    "1 while connected to the phone system.",
    ["pbx"],
    registry=REGISTRY,
)
PBX_RECONNECTS = Counter(
    "ctibridge_pbx_reconnects",
    "Reconnections to the phone system.",
    ["pbx"],
    registry=REGISTRY,
)

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "websockets", "httpx", "httpcore", "aiosqlite", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
