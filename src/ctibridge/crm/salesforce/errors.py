"""Salesforce failures mapped onto our error tree, keeping Salesforce's own words.

Salesforce answers an error with a JSON *array* of ``{"message", "errorCode", "fields"}``
(sObject collections say ``statusCode`` instead of ``errorCode``); the OAuth endpoints answer
``{"error", "error_description"}``. Every outside call runs inside :func:`map_crm_errors`,
which turns transport failures into :class:`CrmUnavailable`; a response that is not a success
becomes an error through :func:`error_for`:

=========================================  ===================================================
401                                        :class:`CrmAuthError` (after one refresh, see auth)
403 ``REQUEST_LIMIT_EXCEEDED``             :class:`CrmUnavailable` with ``retry_after``
403 ``API_DISABLED_FOR_ORG`` and kin       :class:`CrmAuthError` (fatal until reconfigured)
other 4xx (validation, 404, 300, 409...)   :class:`CrmRejected` with message, code and fields
420, 429, 5xx                              :class:`CrmUnavailable` (``Retry-After`` honoured)
=========================================  ===================================================
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ctibridge.errors import CrmAuthError, CrmError, CrmRejected, CrmUnavailable

__all__ = [
    "ApiUsage",
    "SalesforceErrorItem",
    "api_usage",
    "error_for",
    "error_from_response",
    "map_crm_errors",
    "parse_errors",
]

LIMIT_HEADER = "Sforce-Limit-Info"
DAILY_LIMIT_RETRY_AFTER = 3600.0
"""The daily allocation is a rolling 24 hours: look again in an hour."""
BUSY_RETRY_AFTER = 60.0
"""``REQUEST_LIMIT_EXCEEDED`` without an exhausted allocation: the org's cap on concurrent
long-running requests, which clears within a minute or so."""
UNAVAILABLE_RETRY_AFTER = 30.0
_RETRYABLE = frozenset({420, 429, 500, 502, 503, 504})
_FATAL_403 = frozenset({"API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED", "INVALID_AUTH_HEADER"})
_TRANSIENT = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
"""Codes worth a retry whatever the status (a record lock also comes back per record)."""


@dataclass(frozen=True, slots=True)
class SalesforceErrorItem:
    message: str
    error_code: str
    fields: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.error_code, "fields": list(self.fields)}


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """``Sforce-Limit-Info: api-usage=used/max`` — the org's rolling 24-hour API count."""

    used: int
    max: int

    @property
    def exhausted(self) -> bool:
        return self.used >= self.max


def api_usage(headers: Mapping[str, str]) -> ApiUsage | None:
    for part in headers.get(LIMIT_HEADER, "").split(","):
        name, _, value = part.strip().partition("=")
        if name != "api-usage":
            continue
        used, _, most = value.partition("/")
        with contextlib.suppress(ValueError):
            return ApiUsage(int(used), int(most))
    return None


def parse_errors(body: Any) -> list[SalesforceErrorItem]:
    """Salesforce's error entries from a response body, whatever its shape."""
    if isinstance(body, dict) and "error" in body:
        text = str(body.get("error_description") or body["error"])
        return [SalesforceErrorItem(text, str(body["error"]))]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [_item(entry) for entry in body if isinstance(entry, dict)]


def _item(entry: Mapping[str, Any]) -> SalesforceErrorItem:
    code = entry.get("errorCode") or entry.get("statusCode") or "UNKNOWN_ERROR"
    fields = entry.get("fields") or ()
    return SalesforceErrorItem(
        str(entry.get("message", "")), str(code), tuple(str(f) for f in fields)
    )


def error_for(status: int, body: Any, headers: Mapping[str, str] | None = None) -> CrmError:
    """The error for a non-success Salesforce answer (also used for composite parts)."""
    items = parse_errors(body)
    codes = {item.error_code for item in items}
    details = _details(status, items)
    message = "; ".join(item.message for item in items if item.message)
    message = message or f"Salesforce answered HTTP {status}"
    if status == 401 or (status == 403 and codes & _FATAL_403):
        return CrmAuthError(message, details=details)
    if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
        details["retry_after"] = _limit_retry_after(headers or {})
        return CrmUnavailable(message, details=details)
    if status in _RETRYABLE or status >= 500 or codes & _TRANSIENT:
        details["retry_after"] = _retry_after(headers or {}) or UNAVAILABLE_RETRY_AFTER
        return CrmUnavailable(message, details=details)
    return CrmRejected(message, details=details)


def _details(status: int, items: list[SalesforceErrorItem]) -> dict[str, Any]:
    fields = [f for item in items for f in item.fields]
    return {
        "status": status,
        "error_code": items[0].error_code if items else None,
        "fields": list(dict.fromkeys(fields)),
        "errors": [item.as_dict() for item in items],
    }


def _retry_after(headers: Mapping[str, str]) -> float | None:
    with contextlib.suppress(ValueError):
        return max(0.0, float(headers.get("Retry-After", "")))
    return None


def _limit_retry_after(headers: Mapping[str, str]) -> float:
    explicit = _retry_after(headers)
    if explicit is not None:
        return explicit
    usage = api_usage(headers)
    return DAILY_LIMIT_RETRY_AFTER if usage is None or usage.exhausted else BUSY_RETRY_AFTER


def error_from_response(response: httpx.Response) -> CrmError:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return error_for(response.status_code, body, response.headers)


@contextlib.contextmanager
def map_crm_errors(what: str = "Salesforce") -> Iterator[None]:
    """Re-raise transport and protocol failures as our errors (``from`` the original)."""
    try:
        yield
    except CrmError:
        raise
    except httpx.TimeoutException as exc:
        raise CrmUnavailable(
            f"{what} did not answer in time", details={"retry_after": UNAVAILABLE_RETRY_AFTER}
        ) from exc
    except httpx.HTTPStatusError as exc:
        raise error_from_response(exc.response) from exc
    except (httpx.TransportError, OSError) as exc:
        raise CrmUnavailable(
            f"cannot reach {what}: {exc}", details={"retry_after": UNAVAILABLE_RETRY_AFTER}
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CrmUnavailable(f"{what} sent an unreadable answer") from exc
