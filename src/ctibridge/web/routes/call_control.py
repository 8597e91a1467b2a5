"""Call control: click-to-dial, actions on a live call, and what the phone system can do.

Every action answers 202: the phone system took the request, and the call's own events
(pushed on the agent's WebSocket) show when it is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.crm.base import CrmRef
from ctibridge.errors import Forbidden, InvalidRequest
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.services.call_control import ActionRequested, CallControlService
from ctibridge.types import CallId, TenantId
from ctibridge.web.auth import principal_of
from ctibridge.web.routes.session import read_json

__all__ = ["routes"]

_Action = Callable[[CallControlService, Principal, CallId], Awaitable[ActionRequested]]


def _service(request: Request) -> CallControlService:
    service: CallControlService | None = request.app.state.services.call_control
    if service is None:
        raise InvalidRequest("call control is not available on this server")
    return service


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{key} is required (a string)", details={"field": key})
    return value


def _record(value: Any) -> CrmRef | None:
    """``record: {object, id}``: the CRM record the agent clicked the number on."""
    if value is None:
        return None
    if isinstance(value, dict):
        kind, record_id = value.get("object"), value.get("id")
        if isinstance(kind, str) and kind and isinstance(record_id, str) and record_id:
            return CrmRef(kind, record_id)
    raise InvalidRequest("record must be {object, id}", details={"field": "record"})


def _accepted(result: ActionRequested) -> JSONResponse:
    body = {"call_id": result.call_id, "action": result.action.value, "status": "requested"}
    return JSONResponse(body, status_code=202)


async def place_call(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    body = await _body(request)
    clicked = _record(body.get("record"))
    request_id = await _service(request).originate(principal, _text(body, "number"), clicked)
    return JSONResponse({"request_id": request_id}, status_code=202)


def _action(run: _Action) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        principal = await principal_of(request)
        call_id = CallId(request.path_params["call_id"])
        return _accepted(await run(_service(request), principal, call_id))

    return endpoint


async def send_dtmf(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    digits = _text(await _body(request), "digits")
    call_id = CallId(request.path_params["call_id"])
    return _accepted(await _service(request).send_dtmf(principal, call_id, digits))


async def transfer(request: Request) -> JSONResponse:
    principal = await principal_of(request)
    body = await _body(request)
    kind = body.get("kind", "blind")
    if not isinstance(kind, str):
        raise InvalidRequest("kind: 'blind' or 'attended'", details={"field": "kind"})
    call_id = CallId(request.path_params["call_id"])
    result = await _service(request).transfer(principal, call_id, _text(body, "target"), kind=kind)
    return _accepted(result)


async def capabilities(request: Request) -> JSONResponse:
    """What the tenant's phone system can do (agents: their own tenant; admins: ?tenant=)."""
    principal = await principal_of(request)
    tenant = principal.tenant_id
    if principal.is_admin:
        tenant = TenantId(request.query_params.get("tenant") or tenant)
    if tenant == ALL_TENANTS:
        raise InvalidRequest("name the tenant: ?tenant=<id>", details={"field": "tenant"})
    if not principal.can_see_tenant(tenant):
        raise Forbidden("not your tenant")
    pbx, offered = await _service(request).capabilities(tenant)
    return JSONResponse(
        {"tenant_id": tenant, "pbx": pbx, "capabilities": sorted(c.value for c in offered)}
    )


_CALL = "/api/calls/{call_id}"

routes = [
    Route("/api/calls", place_call, methods=["POST"]),
    Route(f"{_CALL}/hangup", _action(lambda s, p, c: s.hangup(p, c)), methods=["POST"]),
    Route(f"{_CALL}/hold", _action(lambda s, p, c: s.hold(p, c)), methods=["POST"]),
    Route(f"{_CALL}/resume", _action(lambda s, p, c: s.resume(p, c)), methods=["POST"]),
    Route(f"{_CALL}/answer", _action(lambda s, p, c: s.answer(p, c)), methods=["POST"]),
    Route(f"{_CALL}/dtmf", send_dtmf, methods=["POST"]),
    Route(f"{_CALL}/transfer", transfer, methods=["POST"]),
    Route("/api/capabilities", capabilities, methods=["GET"]),
]
