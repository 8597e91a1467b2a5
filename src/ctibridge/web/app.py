"""The ASGI application: ``create_app(settings, services)``."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from ctibridge.config import Settings
from ctibridge.errors import CtiError
from ctibridge.services.runtime import Services, tune_gc
from ctibridge.web.push import PushHub
from ctibridge.web.routes import (
    agents,
    call_control,
    calls,
    crm,
    ops,
    outbox,
    presence,
    recordings,
    salesforce,
    session,
)
from ctibridge.web.ws import agent_socket

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = str(resources.files("ctibridge.web") / "static")


async def cti_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CtiError)
    if exc.status_code >= 500:
        logger.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"error_id": f"http-{exc.status_code}", "message": exc.detail, "details": {}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


# The softphone runs inside Salesforce's softphone panel: allow being framed there, and
# nothing but our own scripts, styles and sockets.
_FRAME_ANCESTORS = (
    "'self' https://*.force.com https://*.salesforce.com https://*.my.salesforce.com "
    "https://*.lightning.force.com https://*.visualforce.com"
)


# The origins Salesforce's Open CTI library itself accepts as ``sfdcIframeOrigin``: a
# Salesforce domain, an optional port, no path.
_SALESFORCE_ORIGIN = re.compile(
    r"https?://[\w.-]+(\.((my-)?visual)?force\.com|\.my-lightning\.com"
    r"|\.(my-)?salesforce\.com|\.(salesforce|crmforce)\.(mil|ms))(:\d{1,5})?",
    re.ASCII,
)


def _salesforce_origin(request: Request) -> str | None:
    """The Lightning org that framed the softphone (``?sfdcIframeOrigin=``), if it is a
    Salesforce origin: the page may then load Open CTI from it and be framed by it."""
    values = request.query_params.getlist("sfdcIframeOrigin")
    if len(values) == 1 and _SALESFORCE_ORIGIN.fullmatch(values[0]):
        return values[0]
    return None


def _policy(*, ancestors: str, scripts: str) -> str:
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self'; "
        "connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' blob:; "
        f"object-src 'none'; base-uri 'none'; frame-ancestors {ancestors}"
    )


def _page(name: str, *, framed: bool) -> Any:
    async def page(request: Request) -> Response:
        ancestors, scripts = (_FRAME_ANCESTORS if framed else "'none'"), "'self'"
        org = _salesforce_origin(request) if framed else None
        if org is not None:
            ancestors, scripts = f"{ancestors} {org}", f"{scripts} {org}"
        policy = _policy(ancestors=ancestors, scripts=scripts)
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": policy}
        return FileResponse(f"{STATIC_DIR}/{name}", headers=headers)

    return page


async def _root(request: Request) -> Response:
    return RedirectResponse("/softphone")


def create_app(settings: Settings, services: Services) -> Starlette:
    """The web app around ready-built services; the lifespan starts and stops them."""
    hub = PushHub(services.bus, queue_size=settings.push.queue_size)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start()
        await services.start()
        tune_gc()
        try:
            yield
        finally:
            await hub.stop()
            await services.stop()

    app = Starlette(
        routes=[
            *ops.routes,
            *session.routes,
            *calls.routes,
            *call_control.routes,
            *agents.routes,
            *recordings.routes,
            *crm.routes,
            *salesforce.routes,
            *outbox.routes,
            *presence.routes,
            WebSocketRoute("/ws", agent_socket),
            Route("/", _root),
            Route("/softphone", _page("softphone.html", framed=True)),
            Route("/admin", _page("admin.html", framed=False)),
            Route("/console", _page("console.html", framed=False)),
            Route("/console/records/{object}/{record_id}", _page("console.html", framed=False)),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={CtiError: cti_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.hub = hub
    return app
