"""Crossbar account resources: ``/v2/api_auth`` and an account's users and devices."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ctibridge.demo.kazoo.crossbar import _error, _ok
from ctibridge.demo.kazoo.state import _State


async def _api_auth(state: _State, request: Request, token: str, body: Any) -> Response:
    key = body.get("data", {}).get("api_key") if isinstance(body, dict) else None
    found = [acc for acc, a in state.accounts.items() if key and a.api_key == key]
    if not found:
        return _error(401, "invalid_credentials")
    new_token = secrets.token_hex(16)
    state.tokens[new_token] = found[0]
    data = {"account_id": found[0], "owner_id": None, "is_reseller": False}
    return _ok({"auth_token": new_token, "data": data}, new_token)


async def _list_users(state: _State, request: Request, token: str, body: Any) -> Response:
    users = state.accounts[request.path_params["account_id"]].users
    return _ok({"data": list(users.values())}, token)


async def _list_devices(state: _State, request: Request, token: str, body: Any) -> Response:
    devices = state.accounts[request.path_params["account_id"]].devices
    return _ok({"data": list(devices.values())}, token)
