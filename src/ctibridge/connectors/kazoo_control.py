"""Call control on Kazoo, over crossbar REST (reference §1.5).

* Click-to-dial is a quickcall: ``GET /v2/accounts/{A}/devices/{D}/quickcall/{NUMBER}``
  (``users/{U}`` when the agent has no single device) with ``auto_answer=true`` and our
  request id as the custom application variable ``ctibridge_req``. Kazoo rings the agent's
  phone first, then dials the number; every event of the call carries the variable, so the
  call is outbound and ours before its first event. The 202 reply announces the Call-ID of
  the agent's leg (``endpoints[].outbound_call_id``). The GET does not wait: when no phone
  can be reached, Kazoo sends no events at all.
* Hang up and transfers are channel actions: ``POST .../channels/{UUID}`` with
  ``{"data": {"action": "hangup" | "transfer", ...}}`` on the agent's own leg (the transferor).
* Hold and resume are metaflows: ``PUT .../channels/{UUID}`` with
  ``{"action": "metaflow", "data": {"module": "hold" | "resume", "data": {...}}}`` (``module``
  at the top of ``data``, as the ``metaflow`` schema requires; the crossbar doc's example
  nests it one level deeper, which that schema rejects).

Caveat: channel actions and metaflows are carried out by Konami, with metaflows enabled on
the call. Without them Kazoo still answers 202 and nothing happens. A 202 here therefore means
"Kazoo took the request"; the call events (CHANNEL_DESTROY, CHANNEL_HOLD...) say whether it
was done. Answer and DTMF have no crossbar path at all and are not offered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from ctibridge.callstate.events import AgentRef
from ctibridge.config import KazooSettings
from ctibridge.connectors.kazoo_auth import CrossbarAuth, TokenRejected
from ctibridge.errors import ConnectorError, LegGone, NotSupported, PbxRejected, PbxUnavailable
from ctibridge.types import LegId, TenantId

__all__ = ["CAPABILITIES", "KazooControl"]

logger = logging.getLogger(__name__)

CAPABILITIES = frozenset(
    {"originate", "hangup", "hold", "resume", "blind_transfer", "attended_transfer"}
)
"""What Kazoo can be asked to do. Not ``answer``: a SIP handset answers by itself (quickcall
auto-answer) or not at all, crossbar cannot make it. Not ``dtmf``: no channel action or
metaflow module sends digits into a call."""


class KazooControl:
    """The ``CallControl`` of Kazoo (see ``services/call_control.py``)."""

    pbx = "kazoo"

    def __init__(
        self,
        settings: KazooSettings,
        *,
        auth: CrossbarAuth | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._auth = auth or CrossbarAuth(settings)
        self._http = http
        self._owns_http = http is None

    def capabilities(self) -> frozenset[str]:
        return CAPABILITIES

    async def originate(
        self,
        tenant_id: TenantId,
        agent: AgentRef,
        number: str,
        *,
        request_id: str,
        auto_answer: bool = True,
    ) -> LegId | None:
        """Quickcall: the agent's phone, then ``number``. Returns the agent leg's Call-ID."""
        kind, target = _quickcall_target(agent)
        path = f"/v2/accounts/{_seg(tenant_id)}/{kind}/{_seg(target)}/quickcall/{_seg(number)}"
        params = {"auto_answer": "true" if auto_answer else "false", "ctibridge_req": request_id}
        missing = f"the phone system does not know your phone ({kind[:-1]} {target})"
        reply = await self._send("GET", path, "place the call", missing, params=params)
        leg = _outbound_call_id(reply)
        logger.info(
            "kazoo: quickcall %s for %s %s in %s: leg %s", request_id, kind, target, tenant_id, leg
        )
        return leg

    async def hangup(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._action(tenant_id, leg, "hang up", {"action": "hangup"})

    async def blind_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        await self._transfer(tenant_id, leg, target, "blind")

    async def attended_transfer(self, tenant_id: TenantId, leg: LegId, target: str) -> None:
        """Konami rings ``target`` from the agent's leg while the other party waits; the
        agent completes it by hanging up (or cancels with the takeback digits)."""
        await self._transfer(tenant_id, leg, target, "attended")

    async def hold(self, tenant_id: TenantId, leg: LegId) -> None:
        """Holds the *other* party: ``dtmf_leg`` names the leg that asks (Konami's hold
        module holds the peer of that leg)."""
        await self._metaflow(tenant_id, leg, "put the call on hold", "hold", {"dtmf_leg": leg})

    async def resume(self, tenant_id: TenantId, leg: LegId) -> None:
        await self._metaflow(tenant_id, leg, "take the call off hold", "resume", {})

    async def send_dtmf(self, tenant_id: TenantId, leg: LegId, digits: str) -> None:
        raise NotSupported("Kazoo cannot send DTMF into a call through its REST API")

    async def answer(self, tenant_id: TenantId, leg: LegId) -> None:
        raise NotSupported("Kazoo cannot answer a phone; answer on the phone itself")

    async def close(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
        self._http = None

    # -- requests -----------------------------------------------------------------------

    async def _transfer(self, tenant_id: TenantId, leg: LegId, target: str, kind: str) -> None:
        body = {"action": "transfer", "target": target, "transfer-type": kind}
        await self._action(tenant_id, leg, "transfer the call", body)

    async def _action(
        self, tenant_id: TenantId, leg: LegId, what: str, data: dict[str, Any]
    ) -> None:
        path = _channel_path(tenant_id, leg)
        await self._send("POST", path, what, None, json={"data": data})
        logger.info("kazoo: %s on leg %s in %s requested", data["action"], leg, tenant_id)

    async def _metaflow(
        self, tenant_id: TenantId, leg: LegId, what: str, module: str, data: dict[str, Any]
    ) -> None:
        body = {"action": "metaflow", "data": {"module": module, "data": data}}
        await self._send("PUT", _channel_path(tenant_id, leg), what, None, json=body)
        logger.info("kazoo: metaflow %s on leg %s in %s requested", module, leg, tenant_id)

    async def _send(
        self, method: str, path: str, what: str, missing: str | None, **kwargs: Any
    ) -> httpx.Response:
        """One authenticated request (one re-login if the token is refused); an answer
        other than 2xx becomes an error that tells the agent what went wrong. ``missing``
        explains a 404; None: the path names a channel, so a 404 means the leg is gone."""
        http = self._client()

        async def attempt(token: str) -> httpx.Response:
            headers = {"X-Auth-Token": token}
            reply = await self._auth.request(http, method, path, headers=headers, **kwargs)
            if reply.status_code == 401:
                raise TokenRejected(f"kazoo: {method} {path} refused the token")
            return reply

        reply = await self._auth.with_token(http, attempt)
        if not 200 <= reply.status_code < 300:
            raise _error(reply, what, missing)
        return reply

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._settings.request_timeout)
        return self._http


def _seg(value: str) -> str:
    """One path segment (a leg id may hold ``@``); ``+`` stays for E.164 numbers."""
    return quote(value, safe="+")


def _channel_path(tenant_id: TenantId, leg: LegId) -> str:
    return f"/v2/accounts/{_seg(tenant_id)}/channels/{_seg(leg)}"


def _quickcall_target(agent: AgentRef) -> tuple[str, str]:
    if agent.device_id:
        return "devices", agent.device_id
    if agent.user_id:
        return "users", agent.user_id
    raise PbxRejected("Could not place the call: your agent has no Kazoo user or device")


def _outbound_call_id(reply: httpx.Response) -> LegId | None:
    try:
        body = reply.json()
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    endpoints = data.get("endpoints") if isinstance(data, dict) else None
    for endpoint in endpoints if isinstance(endpoints, list) else ():
        call_id = endpoint.get("outbound_call_id") if isinstance(endpoint, dict) else None
        if isinstance(call_id, str) and call_id:
            return LegId(call_id)
    return None


def _error(reply: httpx.Response, what: str, missing: str | None) -> ConnectorError:
    status = reply.status_code
    said = _message(reply)
    details = {"status": status, "kazoo_message": said}
    if status == 404 and missing is None:
        gone = "the phone system no longer has this call leg"
        return LegGone(f"Could not {what}: {gone}", details=details)
    if status == 404:
        return PbxRejected(f"Could not {what}: {missing}", details=details)
    if status == 403:
        return PbxRejected(f"Could not {what}: the phone system does not allow it", details=details)
    if status == 429 or status >= 500:
        return PbxUnavailable(
            f"Could not {what}: the phone system failed ({said})", details=details
        )
    return PbxRejected(f"Could not {what}: the phone system refused ({said})", details=details)


def _message(reply: httpx.Response) -> str:
    """What Kazoo said: validation messages in ``data`` (``Channel is not bridged``), a
    quickcall's ``data.error_message``, else the top-level ``message``."""
    try:
        body = reply.json()
    except ValueError:
        return f"HTTP {reply.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {reply.status_code}"
    found = list(dict.fromkeys(_messages(body.get("data"), depth=0)))
    if not found and isinstance(body.get("message"), str):
        found = [body["message"]]
    return "; ".join(found) or f"HTTP {reply.status_code}"


def _messages(value: Any, *, depth: int) -> Iterator[str]:
    if not isinstance(value, dict) or depth > 4:
        return
    for key, item in value.items():
        if key in ("message", "error_message") and isinstance(item, str) and item:
            yield item
        else:
            yield from _messages(item, depth=depth + 1)
