"""Crossbar quickcall (click-to-dial): ``GET .../{users|devices}/{id}/quickcall/{number}``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ctibridge.demo.kazoo.crossbar import _error, _ok
from ctibridge.demo.kazoo.state import QuickCall, _Account, _State

_QUICKCALL_OPTIONS = frozenset(
    {
        "auto_answer",
        "cid-name",
        "cid-number",
        "ignore-early-media",
        "media",
        "number_filter",
        "target_call_id",
        "timeout",
    }
)


async def _quickcall(
    state: _State, run_hook: Callable[[QuickCall], None], request: Request, token: str, body: Any
) -> Response:
    params = request.path_params
    account = state.accounts[params["account_id"]]
    directory = {"users": account.users, "devices": account.devices}.get(params["kind"])
    if directory is None or params["target_id"] not in directory:
        return _error(404, "bad_identifier")
    query = dict(request.query_params)
    call = QuickCall(
        account_id=params["account_id"],
        target_type=params["kind"][:-1],
        target_id=params["target_id"],
        number=params["number"],
        call_id=f"{secrets.token_hex(18)}-quickcall",
        options={k: v for k, v in query.items() if k in _QUICKCALL_OPTIONS},
        custom_application_vars={k: v for k, v in query.items() if k not in _QUICKCALL_OPTIONS},
    )
    state.quickcalls.append(call)
    run_hook(call)
    return _ok({"data": _originate(call, account)}, token, status_code=202)


def _originate(call: QuickCall, account: _Account) -> dict[str, Any]:
    """The 202 body: the originate request Kazoo echoes back."""
    if call.target_type == "user":
        devices = [d for d in account.devices.values() if d.get("owner_id") == call.target_id]
    else:
        devices = [account.devices[call.target_id]]
    endpoints = [
        {"outbound_call_id": call.call_id, "endpoint_id": d["id"], "owner_id": d.get("owner_id")}
        for d in devices
    ] or [{"outbound_call_id": call.call_id, "owner_id": call.target_id}]
    return {
        "application_name": "transfer",
        "application_data": {"route": call.number},
        "endpoints": endpoints,
        "custom_application_vars": call.custom_application_vars,
        "timeout": int(call.options.get("timeout", "30")),
        "auto_answer": call.options.get("auto_answer", "true") != "false",
    }
