"""The CRM as agents use it during calls: lookup, search, records, the record a call goes to.

Works with any CRM adapter for lookup, search, get and create; record lists, edits and a
record's call history need the built-in CRM (others answer 400 "not supported").
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctibridge.crm.base import CrmAdapter, CrmRef
from ctibridge.crm.builtin import BuiltinCrm
from ctibridge.errors import InvalidRequest, NotFound
from ctibridge.services.agents import ALL_TENANTS, Principal
from ctibridge.services.screenpop import record_out
from ctibridge.types import CallId
from ctibridge.web.auth import principal_of
from ctibridge.web.routes.session import read_json

__all__ = ["routes"]


def _crm(request: Request) -> CrmAdapter:
    crm: CrmAdapter | None = request.app.state.services.crm
    if crm is None:
        raise InvalidRequest("no CRM is configured (crm.provider)")
    return crm


def _builtin(request: Request) -> BuiltinCrm:
    crm = _crm(request)
    if not isinstance(crm, BuiltinCrm):
        raise InvalidRequest(f"not supported by the {crm.name} CRM")
    return crm


async def _tenant(request: Request) -> tuple[Principal, str]:
    principal = await principal_of(request)
    tenant = request.query_params.get("tenant") or principal.tenant_id
    if tenant == ALL_TENANTS or not principal.can_see_tenant(tenant):
        raise InvalidRequest("name your tenant: ?tenant=<id>", details={"field": "tenant"})
    return principal, tenant


def _limit(request: Request) -> int:
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError as exc:
        raise InvalidRequest("limit must be a number", details={"field": "limit"}) from exc
    if not 1 <= limit <= 200:
        raise InvalidRequest("limit must be between 1 and 200", details={"field": "limit"})
    return limit


async def lookup(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    number = request.query_params.get("number", "")
    found = await _crm(request).lookup_by_number(tenant, number, limit=_limit(request))
    return JSONResponse({"items": [record_out(r) for r in found]})


async def search(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    text = request.query_params.get("q", "").strip()
    if not text:
        return JSONResponse({"items": []})
    found = await _crm(request).search(tenant, text, limit=_limit(request))
    return JSONResponse({"items": [record_out(r) for r in found]})


async def list_records(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    page = await _builtin(request).list_records(
        tenant,
        request.path_params["object"],
        query=request.query_params.get("q", ""),
        limit=_limit(request),
        cursor=request.query_params.get("cursor") or None,
    )
    return JSONResponse(
        {"items": [_record(r) for r in page.records], "next_cursor": page.next_cursor}
    )


def _record(record: Any) -> dict[str, Any]:
    return {
        **record_out(record),
        "fields": record.fields,
        "last_activity_at": record.last_activity_at,
    }


async def get_record(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    ref = CrmRef(request.path_params["object"], request.path_params["record_id"])
    record = await _crm(request).get_record(tenant, ref)
    if record is None:
        raise NotFound(f"no {ref.object} {ref.record_id}")
    out = _record(record)
    crm = _crm(request)
    if isinstance(crm, BuiltinCrm):
        out["activities"] = [
            {
                "activity_id": a.activity_id,
                "call_id": a.log.call_id,
                "subject": a.log.subject,
                "call_type": a.log.call_type,
                "disposition": a.log.disposition,
                "duration_seconds": a.log.duration_seconds,
                "started_at": a.log.started_at,
                "agent_id": a.log.agent_id,
                "recording_url": a.log.recording_url,
            }
            for a in await crm.activities(tenant, ref)
        ]
    return JSONResponse(out)


async def create_record(request: Request) -> JSONResponse:
    """``{"fields": {...}, "call_id"?: ...}``: with a call id, the call's log goes to it."""
    principal, tenant = await _tenant(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
        raise InvalidRequest('expected {"fields": {...}}', details={"field": "fields"})
    record = await _crm(request).create_record(
        tenant, request.path_params["object"], body["fields"]
    )
    call_id = body.get("call_id")
    if isinstance(call_id, str) and call_id:
        _choose(request, principal, call_id, record.ref)
    return JSONResponse(_record(record), status_code=201)


async def update_record(request: Request) -> JSONResponse:
    _, tenant = await _tenant(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
        raise InvalidRequest('expected {"fields": {...}}', details={"field": "fields"})
    ref = CrmRef(request.path_params["object"], request.path_params["record_id"])
    record = await _builtin(request).update_record(tenant, ref, body["fields"])
    return JSONResponse(_record(record))


def _choose(request: Request, principal: Principal, call_id: str, ref: CrmRef) -> None:
    logging_service = request.app.state.services.crm_logging
    if logging_service is not None and principal.agent_id is not None:
        logging_service.remember(call_id, principal.agent_id, chosen=ref)


async def choose_record(request: Request) -> JSONResponse:
    """The agent picked, opened or navigated to a record during a call: the log goes there."""
    principal, tenant = await _tenant(request)
    call_id = CallId(request.path_params["call_id"])
    stored = await request.app.state.services.calls.get(tenant, call_id)
    if not principal.is_admin and principal.agent_id not in stored.handled_by + stored.rung:
        raise NotFound(f"no call {call_id}")
    body = await read_json(request)
    if not isinstance(body, dict) or not body.get("object") or not body.get("id"):
        raise InvalidRequest('expected {"object", "id"}', details={"fields": ["object", "id"]})
    ref = CrmRef(str(body["object"]), str(body["id"]))
    _choose(request, principal, call_id, ref)
    return JSONResponse({"call_id": call_id, "object": ref.object, "id": ref.record_id})


routes = [
    Route("/api/crm/lookup", lookup),
    Route("/api/crm/search", search),
    Route("/api/crm/records/{object}", list_records),
    Route("/api/crm/records/{object}", create_record, methods=["POST"]),
    Route("/api/crm/records/{object}/{record_id}", get_record),
    Route("/api/crm/records/{object}/{record_id}", update_record, methods=["PATCH"]),
    Route("/api/calls/{call_id}/record", choose_record, methods=["PUT"]),
]
