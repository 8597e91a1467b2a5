"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctibridge import __version__
from ctibridge.observability import REGISTRY

__all__ = ["routes"]


async def healthz(request: Request) -> JSONResponse:
    services = request.app.state.services
    return JSONResponse({"status": "ok", "version": __version__, **services.status()})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/healthz", healthz), Route("/metrics", metrics)]
