"""One error tree for ctibridge.

::

    CtiError                          status_code, error_id, details
    ├── ConfigError                   bad configuration (file, env, CLI)
    ├── ProtocolError                 bytes or messages from a PBX we cannot use
    │   ├── FrameError                the stream is broken: fail the connection, reconnect
    │   └── FieldError                one message is unusable: log it, skip it
    ├── ConnectorError                talking to a PBX
    │   ├── PbxUnavailable            network trouble: retried with backoff
    │   ├── PbxAuthError              credentials refused: fatal until reconfigured
    │   ├── PbxRejected               a call-control request refused
    │   │   └── LegGone        409    the leg hung up meanwhile
    │   └── NotSupported       400    this phone system cannot do that
    ├── CrmError                      talking to a CRM
    │   ├── CrmUnavailable            retried
    │   ├── CrmAuthError              token refused
    │   └── CrmRejected               the CRM said no (validation)
    ├── StorageError                  the database failed
    └── ApiError                      a request to our own API was wrong
        ├── InvalidRequest  400
        ├── NotAuthenticated 401
        ├── Forbidden       403
        └── NotFound        404
            └── NoSuchCall
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "ConfigError",
    "ConnectorError",
    "CrmAuthError",
    "CrmError",
    "CrmRejected",
    "CrmUnavailable",
    "CtiError",
    "FieldError",
    "Forbidden",
    "FrameError",
    "InvalidRequest",
    "LegGone",
    "NoSuchCall",
    "NotAuthenticated",
    "NotFound",
    "NotSupported",
    "PbxAuthError",
    "PbxRejected",
    "PbxUnavailable",
    "ProtocolError",
    "StorageError",
]


class CtiError(Exception):
    """Base of every error ctibridge raises on purpose."""

    status_code = 500
    error_id = "internal-error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error_id": self.error_id, "message": self.message, "details": self.details}


class ConfigError(CtiError):
    error_id = "config-error"


class ProtocolError(CtiError):
    status_code = 502
    error_id = "protocol-error"


class FrameError(ProtocolError):
    """The byte stream cannot be trusted any more; the connection must be dropped."""

    error_id = "frame-error"


class FieldError(ProtocolError):
    """One message is malformed or misses a field; skip it and go on."""

    error_id = "field-error"


class ConnectorError(CtiError):
    status_code = 502
    error_id = "pbx-error"


class PbxUnavailable(ConnectorError):
    status_code = 503
    error_id = "pbx-unavailable"


class PbxAuthError(ConnectorError):
    error_id = "pbx-auth-failed"


class PbxRejected(ConnectorError):
    """The phone system refused a call-control request."""

    error_id = "pbx-rejected"


class LegGone(PbxRejected):
    """The phone system no longer has the leg (it hung up meanwhile)."""

    status_code = 409
    error_id = "pbx-leg-gone"


class NotSupported(ConnectorError):
    """This phone system cannot do that at all."""

    status_code = 400
    error_id = "pbx-not-supported"


class CrmError(CtiError):
    status_code = 502
    error_id = "crm-error"


class CrmUnavailable(CrmError):
    status_code = 503
    error_id = "crm-unavailable"


class CrmAuthError(CrmError):
    error_id = "crm-auth-failed"


class CrmRejected(CrmError):
    error_id = "crm-rejected"


class StorageError(CtiError):
    status_code = 503
    error_id = "storage-error"


class ApiError(CtiError):
    status_code = 400
    error_id = "api-error"


class InvalidRequest(ApiError):
    status_code = 400
    error_id = "invalid-request"


class NotAuthenticated(ApiError):
    status_code = 401
    error_id = "not-authenticated"


class Forbidden(ApiError):
    status_code = 403
    error_id = "forbidden"


class NotFound(ApiError):
    status_code = 404
    error_id = "not-found"


class NoSuchCall(NotFound):
    error_id = "no-such-call"
