"""A fake Salesforce Lightning page on its own origin, framing ctibridge's softphone.

Like the real Lightning utility bar, it loads ``/softphone?mode=Lightning&sfdcIframeOrigin=
<its origin>&...`` in an iframe, serves an Open CTI library at the library's path
(``/support/api/<version>/lightning/opencti_min.js``: our stand-in, ``static/opencti_min.js``)
and answers the softphone's Open CTI calls. Control plane, for tests: ``frame()`` (what to
embed), ``set_records()`` and ``set_resolver()`` (the org's records), ``fail()``, ``calls()``,
``library_requests()``, ``reset()``.

The stand-in library only accepts Salesforce origins, as the real one does, plus the origins
this host trusts (its own, unless ``trusted=False``: then the softphone sees Open CTI refuse
to start, as on a misconfigured call center).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ctibridge import config
from ctibridge.launcher import HttpServer

__all__ = ["HostRecord", "LightningHost"]

STATIC = Path(__file__).resolve().parent / "static"
PLACEHOLDER = "/*@trusted-origins@*/ []"


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A record the fake org has (same ids as the CRM behind ctibridge, for the tests)."""

    object: str
    id: str
    name: str
    phones: tuple[tuple[str, str], ...] = ()
    """(label, number) pairs."""

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "id": self.id,
            "name": self.name,
            "phones": [{"label": label, "number": number} for label, number in self.phones],
        }


@dataclass
class _State:
    softphone_url: str = "about:blank"
    softphone_origin: str = ""
    records: list[HostRecord] = field(default_factory=list)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    library_requests: list[str] = field(default_factory=list)
    resolver: Callable[[str], Awaitable[HostRecord | None]] | None = None


class LightningHost:
    def __init__(self, *, trusted: bool = True) -> None:
        self.trusted = trusted
        self.state = _State()
        settings = config.load(None, {}, {"web": {"port": 0}})
        self.http = HttpServer(self._app(), settings)

    @property
    def origin(self) -> str:
        return self.http.url

    @property
    def page_url(self) -> str:
        return f"{self.origin}/lightning/page"

    async def __aenter__(self) -> LightningHost:
        await self.http.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.stop()

    # -- control plane -------------------------------------------------------------------

    def frame(self, ctibridge_url: str, token: str | None, *, extra_query: str = "") -> str:
        """Embed ctibridge's softphone the way Lightning does (plus a sign-in fragment, when
        there is a token)."""
        query = (
            f"mode=Lightning&sfdcIframeOrigin={quote(self.origin, safe='')}"
            "&isdtp=vw&clc=1&ltn_app_id=06m5g000001TeStAAC&nonce=a1b2c3d4e5f6"
        )
        if extra_query:
            query += f"&{extra_query}"
        fragment = f"#token={token}" if token else ""
        self.state.softphone_url = f"{ctibridge_url}/softphone?{query}{fragment}"
        self.state.softphone_origin = ctibridge_url
        return self.state.softphone_url

    def set_records(self, records: list[HostRecord]) -> None:
        self.state.records = list(records)

    def set_resolver(self, resolver: Callable[[str], Awaitable[HostRecord | None]]) -> None:
        """How the org finds a record it was not given (say, one created during the test)."""
        self.state.resolver = resolver

    def fail(self, method: str, code: str = "GENERIC_ERROR", description: str = "") -> None:
        """Answer ``method`` with ``success: false`` from now on."""
        self.state.failures[method] = {"code": code, "description": description}

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Every Open CTI message the softphone sent (as received), oldest first."""
        return [c for c in self.state.calls if method is None or c.get("methodName") == method]

    def library_requests(self) -> list[str]:
        """Paths under which the Open CTI library was requested."""
        return list(self.state.library_requests)

    def reset(self) -> None:
        self.state.calls.clear()
        self.state.failures.clear()
        self.state.library_requests.clear()

    # -- the app -------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/lightning/page", self._page),
                Route("/lightning/config", self._config),
                Route("/lightning/calls", self._record_call, methods=["POST"]),
                Route("/lightning/records/{record_id}", self._record),
                Route("/support/api/{version}/lightning/opencti_min.js", self._library),
                Mount("/lightning/static", StaticFiles(directory=STATIC)),
            ]
        )

    async def _page(self, request: Request) -> Response:
        return FileResponse(STATIC / "host.html", headers={"Cache-Control": "no-store"})

    async def _config(self, request: Request) -> Response:
        state = self.state
        return JSONResponse(
            {
                "softphone_url": state.softphone_url,
                "softphone_origin": state.softphone_origin,
                "records": [r.to_json() for r in state.records],
                "failures": state.failures,
            }
        )

    async def _record_call(self, request: Request) -> Response:
        self.state.calls.append(await request.json())
        return Response(status_code=204)

    async def _record(self, request: Request) -> Response:
        resolver = self.state.resolver
        found = await resolver(request.path_params["record_id"]) if resolver else None
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(found.to_json())

    async def _library(self, request: Request) -> Response:
        self.state.library_requests.append(request.url.path)
        source = (STATIC / "opencti_min.js").read_text()
        assert PLACEHOLDER in source
        trusted = [self.origin] if self.trusted else []
        source = source.replace(PLACEHOLDER, json.dumps(trusted))
        return Response(source, media_type="text/javascript", headers={"Cache-Control": "no-store"})
