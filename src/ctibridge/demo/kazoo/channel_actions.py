"""Crossbar channel resources: list the live channels, and act on one (hang up, transfer,
hold, resume) the way a Kazoo with Konami would, by publishing the resulting events."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ctibridge.demo.kazoo.channels import _listing
from ctibridge.demo.kazoo.crossbar import _error, _ok
from ctibridge.demo.kazoo.events import _follow
from ctibridge.demo.kazoo.state import _Account, _State

_Later = Callable[[str, list[tuple[float, dict[str, Any]]]], None]
"""Publishes ``(delay, event data)`` steps for an account, in the background."""


async def _list_channels(state: _State, request: Request, token: str, body: Any) -> Response:
    return _ok({"data": _listing(state.accounts[request.path_params["account_id"]])}, token)


async def _channel_action(
    state: _State, later: _Later, request: Request, token: str, body: Any
) -> Response:
    """Channel actions (``POST``: hangup, transfer) and metaflows (``PUT``: hold, resume),
    carried out as a Kazoo with Konami would: the resulting call events are published."""
    account_id, call_id = request.path_params["account_id"], request.path_params["call_id"]
    account = state.accounts[account_id]
    last = account.last_event.get(call_id)
    if last is None:
        return _error(404, "bad_identifier")
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(body, dict) and body.get("action") == "metaflow":
        data = body  # the metaflow shape with the action outside "data" (both are seen)
    if not isinstance(data, dict):
        return _error(400, "invalid data")
    if request.method == "PUT":
        if data.get("action") != "metaflow" or not isinstance(data.get("data"), dict):
            return _error(400, "metaflow expected")
        module = data["data"].get("module")
        steps = {"hold": "CHANNEL_HOLD", "resume": "CHANNEL_UNHOLD"}.get(str(module))
        if steps is None:
            return _error(400, f"metaflow module {module} not supported here")
        later(account_id, [(0.0, _follow(last, steps))])
        return _ok({"data": {"message": f"{module} initiated"}}, token, status_code=202)
    action = data.get("action")
    if action == "hangup":
        events = [(0.0, _follow(last, "CHANNEL_DESTROY", hangup_cause="NORMAL_CLEARING"))]
        other = account.last_event.get(str(last.get("other_leg_call_id") or ""))
        if other is not None:
            events.append((0.0, _follow(other, "CHANNEL_DESTROY", hangup_cause="NORMAL_CLEARING")))
        later(account_id, events)
        return _ok({"data": {"message": "hangup initiated"}}, token, status_code=202)
    if action == "transfer":
        plan = _blind_transfer(account, last, str(data.get("target", "")))
        if plan is None:
            return _error(404, "transfer target not found")
        later(account_id, plan)
        return _ok({"data": {"message": "transfer initiated"}}, token, status_code=202)
    return _error(400, f"action {action} not supported here")


def _blind_transfer(
    account: _Account, transferor: dict[str, Any], target: str
) -> list[tuple[float, dict[str, Any]]] | None:
    """The transferor's leg ends; the target extension's phone rings and answers."""
    user = next((u for u in account.users.values() if u.get("extension") == target), None)
    caller_leg = account.last_event.get(str(transferor.get("other_leg_call_id") or ""))
    if user is None or caller_leg is None:
        return None
    device = next((d for d in account.devices.values() if d.get("owner_id") == user["id"]), None)
    leg = dict(transferor)
    leg["call_id"] = secrets.token_hex(16)
    leg["other_leg_call_id"] = caller_leg["call_id"]
    leg["presence_id"] = f"{target}@{str(transferor.get('presence_id', '@')).split('@')[-1]}"
    leg["callee_id_number"] = target
    ccv = dict(leg.get("custom_channel_vars") or {})
    ccv["owner_id"] = user["id"]
    if device is not None:
        ccv["authorizing_id"] = device["id"]
    leg["custom_channel_vars"] = ccv
    for key in ("hangup_cause", "hangup_code", "disposition"):
        leg.pop(key, None)
    return [
        (0.0, _follow(transferor, "CHANNEL_DESTROY", hangup_cause="BLIND_TRANSFER")),
        (0.2, _follow(leg, "CHANNEL_CREATE")),
        (2.5, _follow(leg, "CHANNEL_ANSWER", disposition="ANSWER")),
        (0.0, _follow(caller_leg, "CHANNEL_BRIDGE", other_leg_call_id=leg["call_id"])),
    ]
