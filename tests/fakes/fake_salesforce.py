"""A fake Salesforce over real HTTP: the OAuth endpoints and the REST resources ctibridge
calls, with the documented shapes (error arrays, composite answers, collection results with
``statusCode``, ``Sforce-Limit-Info``), in memory.

Two listening sockets, as in real life two hosts: the *login* server (``/services/oauth2/*``)
and the org's *instance* (``/services/data/*``, only there): a client that ignores the
``instance_url`` of its token fails.

Control plane (plain methods, the test process owns the server): ``reset()``,
``add_record(type, fields)``, ``records(type)``, ``requests()``, ``set_down(True)``,
``expire_sessions()``, ``exhaust_limits(n)``, ``fail_next(status, errors)``,
``add_validation_rule(obj, message)`` / ``clear_validation_rules()``,
``add_jwt_user(username, public_pem)``, ``grant_refresh_token()``.

The custom fields (``KazooCallData__c``, ``Task.ctibridge_Key__c``) are read from the
metadata ctibridge ships, so code and metadata cannot drift apart unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.fake_salesforce_oauth import FakeLogin
from tests.fakes.fake_salesforce_query import QueryError, run_soql, run_sosl
from tests.fakes.fake_salesforce_store import (
    API_VERSION,
    Reply,
    Store,
    ValidationRule,
    entry,
    error,
)

__all__ = ["FakeSalesforce", "Recorded", "Reply"]

# --- the fake -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    server: str
    """``login`` or ``instance``."""
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    status: int = 0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test process owns signal handling

    async def main_loop(self) -> None:
        """uvicorn's loop, ticking every 10 ms instead of 100 ms: tests stop it often."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown without its fixed 100 ms pauses (no lifespan here)."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for _ in range(400):
            if not (self.server_state.connections or self.server_state.tasks):
                break
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


class FakeSalesforce(FakeLogin):
    API_MAX = 15_000

    def __init__(self, *, rotate_refresh_tokens: bool = False, query_page_size: int = 2000) -> None:
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.query_page_size = query_page_size
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PATCH", "DELETE"])]
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.login_port = self.instance_port = 0
        self.reset()

    # --- lifecycle ---

    @property
    def login_url(self) -> str:
        return f"http://127.0.0.1:{self.login_port}"

    @property
    def instance_url(self) -> str:
        return f"http://127.0.0.1:{self.instance_port}"

    async def start(self) -> FakeSalesforce:
        sockets = []
        for _ in range(2):
            # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so,
            # and without it every keep-alive answer waits ~40 ms for a delayed ACK.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        self.login_port, self.instance_port = (s.getsockname()[1] for s in sockets)
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, ws="websockets-sansio", lifespan="off"
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=sockets))
        for _ in range(500):
            if self._server.started:
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("the fake Salesforce did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = self._server.force_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None

    async def __aenter__(self) -> FakeSalesforce:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- control plane ---

    def reset(self) -> None:
        self.store = Store()
        self.store.db["User"][self.USER_ID] = {
            "Id": self.USER_ID,
            "Name": "Integration User",
            "Username": "integration@example.com",
        }
        self._requests: list[Recorded] = []
        self._down = False
        self._limit_failures = 0
        self._failures: list[Reply] = []
        self.api_used = 0
        self.reset_login()
        self._cursors: dict[str, list[dict[str, Any]]] = {}

    def add_record(self, type: str, fields: dict[str, Any]) -> str:
        """Store a record as is (read-only fields such as ``LastActivityDate`` allowed)."""
        reply = self.store.insert(type, dict(fields), checked=False)
        return str(reply.body["id"])

    def records(self, type: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for r in self.store.db.get(type, {}).values()]

    def requests(self) -> list[Recorded]:
        return list(self._requests)

    def api_requests(self) -> list[Recorded]:
        return [r for r in self._requests if r.server == "instance"]

    def set_down(self, down: bool) -> None:
        """Every endpoint answers 503 while down."""
        self._down = down

    def expire_sessions(self) -> None:
        """Every access token becomes invalid (the next API call gets a 401)."""
        self.access_tokens.clear()

    def exhaust_limits(self, n: int = 1) -> None:
        """The next ``n`` API calls get 403 ``REQUEST_LIMIT_EXCEEDED``."""
        self._limit_failures = n

    def fail_next(self, status: int, errors: list[dict[str, Any]], *, times: int = 1) -> None:
        self._failures += [Reply(status, errors)] * times

    def add_validation_rule(
        self,
        obj: str,
        message: str,
        *,
        when: Callable[[dict[str, Any]], bool] = lambda record: True,
        field: str | None = None,
    ) -> None:
        """From now on, writes of ``obj`` whose record makes ``when`` true are refused with
        ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` and ``message`` (per record in collections)."""
        self.store.rules.append(ValidationRule(obj, message, when, field))

    def clear_validation_rules(self) -> None:
        self.store.rules.clear()

    # --- HTTP ---

    async def _handle(self, request: Request) -> Response:
        server = "login" if request.scope["server"][1] == self.login_port else "instance"
        raw = await request.body()
        body = _decode(raw, request.headers.get("content-type", ""))
        path = "/" + request.path_params["path"]
        query = dict(request.query_params)
        reply = self._route(
            server, request.method, path, query, body, request.headers.get("authorization")
        )
        self._requests.append(
            Recorded(
                server,
                request.method,
                path,
                query,
                body,
                request.headers.get("authorization"),
                reply.status,
            )
        )
        headers = dict(reply.headers)
        if server == "instance":
            headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_used}/{self.API_MAX}")
        if reply.status in (301, 302, 303):
            return RedirectResponse(headers["Location"], status_code=reply.status)
        if reply.status == 204 or reply.body is None:
            return Response(status_code=reply.status, headers=headers)
        return JSONResponse(reply.body, status_code=reply.status, headers=headers)

    def _route(
        self,
        server: str,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        auth: str | None,
    ) -> Reply:
        if self._down:
            return error(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable")
        if server == "login":
            return self._oauth(method, path, query, body)
        if not path.startswith("/services/data/"):
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        token = (auth or "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self._failures:
            return self._failures.pop(0)
        if self._limit_failures:
            self._limit_failures -= 1
            reply = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            usage = f"api-usage={self.API_MAX}/{self.API_MAX}"
            return replace(reply, headers={"Sforce-Limit-Info": usage})
        self.api_used += 1
        return self._dispatch(method, path, query, body)

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        prefix = f"/services/data/v{API_VERSION}/"
        if not path.startswith(prefix):
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        parts = [p for p in path[len(prefix) :].split("/") if p]
        handler = self._handler(method, parts)
        if handler is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            return handler(parts, query, body)
        except QueryError as exc:
            return error(400, exc.code, exc.message)

    def _handler(
        self, method: str, parts: list[str]
    ) -> Callable[[list[str], dict[str, str], Any], Reply] | None:
        shape = (method, parts[0] if parts else "", len(parts))
        table: dict[tuple[str, str, int], Callable[[list[str], dict[str, str], Any], Reply]] = {
            ("POST", "sobjects", 2): self._create,
            ("GET", "sobjects", 3): self._retrieve,
            ("PATCH", "sobjects", 3): self._update,
            ("PATCH", "sobjects", 4): self._upsert,
            ("PATCH", "composite", 4): self._collection_upsert,
            ("POST", "composite", 1): self._composite,
            ("GET", "search", 1): self._search,
            ("GET", "query", 1): self._query,
            ("GET", "query", 2): self._query_more,
        }
        return table.get(shape)

    # --- sObjects ---

    def _type(self, name: str) -> Reply | None:
        if name not in self.store.schema:
            return error(
                404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'"
            )
        return None

    def _create(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        if not isinstance(body, dict):
            return error(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
        return self._type(parts[1]) or self.store.insert(parts[1], body)

    def _retrieve(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        obj, record_id = parts[1], parts[2]
        record = self.store.db.get(obj, {}).get(record_id)
        if record is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        wanted = [f for f in query.get("fields", "").split(",") if f] or list(record)
        unknown = [f for f in wanted if f not in self.store.schema[obj]]
        if unknown:
            return error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{obj}'.")
        row = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{API_VERSION}/sobjects/{obj}/{record_id}",
            }
        }
        return Reply(200, row | {f: record.get(f) for f in wanted})

    def _update(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        return self._type(parts[1]) or self.store.modify(parts[1], parts[2], dict(body or {}))

    def _upsert(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        return self._type(parts[1]) or self.store.upsert(
            parts[1], parts[2], parts[3], dict(body or {})
        )

    def _collection_upsert(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        if parts[1] != "sobjects":
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        obj, key = parts[2], parts[3]
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            return error(400, "JSON_PARSER_ERROR", "records is required")
        if len(records) > 200:
            return error(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        if self._type(obj):
            return error(400, "INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        snapshot = self.store.snapshot() if body.get("allOrNone") else None
        results = [self._collection_item(obj, key, r) for r in records]
        if snapshot is not None and not all(r["success"] for r in results):
            self.store.restore(snapshot)
            results = [r if not r["success"] else _rolled_back() for r in results]
        return Reply(200, results)

    def _collection_item(self, obj: str, key: str, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict) or (record.get("attributes") or {}).get("type") != obj:
            return _failed([entry("INVALID_TYPE", "each record needs attributes.type = " + obj)])
        values = {k: v for k, v in record.items() if k != "attributes"}
        if not values.get(key):
            return _failed([entry("MISSING_ARGUMENT", f"{key} not specified", [key])])
        reply = self.store.upsert(obj, key, str(values[key]), values)
        if reply.status in (200, 201):
            return {
                "id": reply.body["id"],
                "success": True,
                "errors": [],
                "created": reply.status == 201,
            }
        entries = (
            reply.body
            if isinstance(reply.body, list) and reply.body and isinstance(reply.body[0], dict)
            else [entry("DUPLICATE_EXTERNAL_ID", "several records match", [key])]
        )
        return _failed(entries)

    # --- composite ---

    def _composite(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not 0 < len(subrequests) <= 25:
            return error(400, "INVALID_BATCH_REQUEST", "compositeRequest has 1 to 25 subrequests")
        snapshot = self.store.snapshot() if body.get("allOrNone") else None
        done: dict[str, Reply] = {}
        answers = []
        for sub in subrequests:
            reply = self._subrequest(sub, done)
            done[str(sub.get("referenceId"))] = reply
            answers.append((sub, reply))
        failed = any(r.status >= 400 for _, r in answers)
        if snapshot is not None and failed:
            self.store.restore(snapshot)
            halted = error(
                400,
                "PROCESSING_HALTED",
                "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            )
            answers = [(s, r if r.status >= 400 else halted) for s, r in answers]
        return Reply(
            200,
            {
                "compositeResponse": [
                    {
                        "body": r.body,
                        "httpHeaders": r.headers,
                        "httpStatusCode": r.status,
                        "referenceId": s.get("referenceId"),
                    }
                    for s, r in answers
                ]
            },
        )

    def _subrequest(self, sub: dict[str, Any], done: dict[str, Reply]) -> Reply:
        try:
            url = _substitute(sub.get("url", ""), done)
            body = _substitute(sub.get("body"), done)
        except LookupError as exc:
            return error(
                400,
                "PROCESSING_HALTED",
                f"Invalid reference specified. No value for {exc.args[0]} found.",
            )
        split = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        return self._dispatch(str(sub.get("method", "")), split.path, query, body)

    # --- search and query ---

    def _search(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        rows = run_sosl(query.get("q", ""), self.store.schema, self.store.db, API_VERSION)
        return Reply(200, {"searchRecords": rows})

    def _query(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        rows = run_soql(query.get("q", ""), self.store.schema, self.store.db, API_VERSION)
        return self._page(rows, len(rows))

    def _query_more(self, parts: list[str], query: dict[str, str], body: Any) -> Reply:
        rows = self._cursors.pop(parts[1], None)
        if rows is None:
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(rows, int(parts[1].rsplit("-", 1)[1]))

    def _page(self, rows: list[dict[str, Any]], total: int) -> Reply:
        page, rest = rows[: self.query_page_size], rows[self.query_page_size :]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": page}
        if rest:
            locator = f"01gFk{secrets.token_hex(4)}-{total}"
            self._cursors[locator] = rest
            body["nextRecordsUrl"] = f"/services/data/v{API_VERSION}/query/{locator}"
        return Reply(200, body)


def _failed(errors: list[dict[str, Any]]) -> dict[str, Any]:
    converted = [
        {
            "statusCode": e.get("errorCode"),
            "message": e.get("message"),
            "fields": e.get("fields", []),
        }
        for e in errors
    ]
    return {"id": None, "success": False, "errors": converted}


def _rolled_back() -> dict[str, Any]:
    return _failed(
        [
            entry(
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was "
                "using AllOrNone header",
            )
        ]
    )


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")


def _substitute(value: Any, done: dict[str, Reply]) -> Any:
    """``@{ref.id}`` / ``@{ref[0].id}`` replaced by values from earlier answers."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: str(_resolve(m.group(1), m.group(2), done)), value)
    if isinstance(value, list):
        return [_substitute(v, done) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, done) for k, v in value.items()}
    return value


def _resolve(ref: str, path: str, done: dict[str, Reply]) -> Any:
    reply = done.get(ref)
    if reply is None or reply.status >= 400:
        raise LookupError(f"{ref}{path}")
    current: Any = reply.body
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = step
        try:
            current = current[int(index)] if index else current[name]
        except (KeyError, IndexError, TypeError):
            raise LookupError(f"{ref}{path}") from None
    if current is None:
        raise LookupError(f"{ref}{path}")
    return current
