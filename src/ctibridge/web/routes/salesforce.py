"""Admin: connect a tenant's Salesforce org (OAuth button), see and drop the connection, and
match agents to Salesforce users.

``GET /api/salesforce/connect?tenant=`` answers 302 to Salesforce's authorise page (or, asked
for JSON, ``{"authorize_url"}``: the admin page sends its token in a header, then navigates)
and sets a cookie binding the sign-in to this browser. Salesforce sends the browser back to
``GET /salesforce/callback?code&state``, which stores the connection and redirects to
``/admin#tenant=<id>&salesforce=connected``; on failure it shows what went wrong (Salesforce's
own ``error`` and ``error_description`` included) and stores nothing.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ctibridge.crm.salesforce.callcenter import definition_for, render
from ctibridge.errors import ConfigError, CtiError, InvalidRequest, NotFound
from ctibridge.services.salesforce_connect import STATE_TTL, SalesforceConnectService
from ctibridge.web.auth import admin_tenant

__all__ = ["BROWSER_COOKIE", "routes"]

BROWSER_COOKIE = "ctibridge_sf_browser"
_PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _service(request: Request) -> SalesforceConnectService | None:
    service: SalesforceConnectService | None = request.app.state.services.salesforce
    return service


def _enabled(request: Request) -> SalesforceConnectService:
    service = _service(request)
    if service is None:
        raise NotFound('Salesforce is not the CRM of this server: set crm.provider = "salesforce"')
    return service


async def _tenant(request: Request) -> str:
    _, tenant = await admin_tenant(request)
    return tenant


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def connect(request: Request) -> Response:
    tenant = await _tenant(request)
    start = await _enabled(request).begin(tenant, browser=request.cookies.get(BROWSER_COOKIE))
    response: Response
    if _wants_json(request):
        response = JSONResponse({"authorize_url": start.authorize_url, "expires_in": STATE_TTL})
    else:
        response = RedirectResponse(start.authorize_url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        BROWSER_COOKIE,
        start.browser,
        max_age=int(STATE_TTL),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.public_url.startswith("https:"),
    )
    return response


async def callback(request: Request) -> Response:
    service = _enabled(request)
    query = request.query_params
    try:
        tenant = await service.complete(
            state=query.get("state", ""),
            code=query.get("code", ""),
            error=query.get("error", ""),
            error_description=query.get("error_description", ""),
            browser=request.cookies.get(BROWSER_COOKIE, ""),
        )
    except CtiError as exc:
        return _failure(request, exc)
    fragment = urlencode({"tenant": tenant, "salesforce": "connected"})
    return RedirectResponse(f"/admin#{fragment}", status_code=302)


def _salesforce_words(exc: CtiError) -> list[tuple[str, str]]:
    """Salesforce's own (code, description) pairs carried by an error."""
    details = exc.details
    if details.get("error"):
        return [(str(details["error"]), str(details.get("error_description") or ""))]
    return [
        (str(e.get("errorCode") or ""), str(e.get("message") or ""))
        for e in details.get("errors") or ()
        if isinstance(e, dict)
    ]


def _failure(request: Request, exc: CtiError) -> Response:
    if _wants_json(request):
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)
    words = "".join(
        f'<li><code data-testid="salesforce-error-code">{html.escape(code)}</code> '
        f"{html.escape(text)}</li>"
        for code, text in _salesforce_words(exc)
    )
    said = f'<p>Salesforce said:</p><ul class="sf-said">{words}</ul>' if words else ""
    message = exc.message[:1].upper() + exc.message[1:]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Salesforce not connected · ctibridge</title>
<link rel="stylesheet" href="/static/css/app.css">
<link rel="stylesheet" href="/static/css/admin.css"></head>
<body class="page sf-page"><main class="signin">
<div class="signin__card" data-testid="salesforce-error" data-error-id="{exc.error_id}">
<h1 class="signin__title">Salesforce is not connected</h1>
<div class="notice" role="alert">{html.escape(message)}</div>{said}
<a class="button button--primary button--block" href="/admin">Back to the admin page</a>
</div></main></body></html>
"""
    headers = {"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-store"}
    return HTMLResponse(page, status_code=exc.status_code, headers=headers)


async def status(request: Request) -> JSONResponse:
    tenant = await _tenant(request)
    service = _service(request)
    if service is None:
        body: dict[str, Any] = {"tenant_id": tenant, "enabled": False, "connected": False}
        return JSONResponse(body)
    return JSONResponse(await service.status(tenant))


async def disconnect(request: Request) -> Response:
    tenant = await _tenant(request)
    await _enabled(request).disconnect(tenant)
    return Response(status_code=204)


async def match_users(request: Request) -> JSONResponse:
    tenant = await _tenant(request)
    return JSONResponse(await _enabled(request).match_users(tenant))


async def callcenter_xml(request: Request) -> Response:
    """The Call Center definition to import in Salesforce (Setup → Call Centers → Import)."""
    tenant = await _tenant(request)
    settings = request.app.state.settings
    try:
        xml = render(definition_for(settings, tenant_id=tenant, public_url=settings.public_url))
    except ConfigError as exc:
        raise InvalidRequest(exc.message, details={"field": "web.public_url"}) from exc
    return Response(
        xml,
        media_type="application/xml",
        headers={"Content-Disposition": 'attachment; filename="ctibridge-callcenter.xml"'},
    )


routes = [
    Route("/api/salesforce/callcenter.xml", callcenter_xml),
    Route("/api/salesforce/connect", connect),
    Route("/salesforce/callback", callback),
    Route("/api/salesforce/status", status),
    Route("/api/salesforce/connection", disconnect, methods=["DELETE"]),
    Route("/api/salesforce/match-users", match_users, methods=["POST"]),
]
