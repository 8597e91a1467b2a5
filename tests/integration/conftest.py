"""The whole product against the built-in Kazoo-compatible phone system, over real sockets,
on SQLite and on the PostgreSQL of this machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets

from ctibridge.config import Settings, load
from ctibridge.launcher import DemoSystem, running_demo
from ctibridge.storage import SqlStorage
from tests.fakes.fake_salesforce import FakeSalesforce

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def until(check: Callable[[], Any], within: float = 10.0, what: str = "condition") -> Any:
    """Bounded poll: the value of ``check()`` once truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def system(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DemoSystem]:
    """The whole product, once on SQLite and once on PostgreSQL."""
    async with _system(request.param, tmp_path) as demo:
        yield demo


@pytest.fixture
async def sqlite_system(tmp_path: Path) -> AsyncIterator[DemoSystem]:
    """The whole product on SQLite (for tests whose subject is not the database)."""
    async with _system("sqlite", tmp_path) as demo:
        yield demo


def fast_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for a whole-product test: data in ``tmp_path``, any free port, quick Kazoo
    reconnects and storage flushes; ``sections`` add to (or replace) those sections."""
    return load(
        None,
        {},
        {
            "data_dir": str(tmp_path / "data"),
            "web": {"port": 0},
            "kazoo": {"reconnect_initial": 0.05, "reconnect_max": 0.2},
            "storage": {"flush_interval": 0.005},
            **sections,
        },
    )


@contextlib.asynccontextmanager
async def _system(backend: str, tmp_path: Path) -> AsyncIterator[DemoSystem]:
    settings = fast_settings(tmp_path)
    storage = None
    schema = None
    if backend == "postgres":
        schema = f"it_{secrets.token_hex(6)}"
        await _pg(f'CREATE SCHEMA "{schema}"')
        storage = SqlStorage(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with running_demo(settings, traffic=False, storage=storage) as demo:
            await until(
                lambda: demo.services.status()["connectors"][0].get("connected"),
                what="the Kazoo connector to connect",
            )
            yield demo
    finally:
        if schema is not None:
            await _pg(f'DROP SCHEMA "{schema}" CASCADE')


class AgentClient:
    """A real WebSocket client of /ws, collecting every frame."""

    def __init__(self, system: DemoSystem, token: str) -> None:
        self.url = system.http.url.replace("http", "ws", 1) + f"/ws?token={token}"
        self.frames: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.closed: websockets.ConnectionClosed | None = None

    async def __aenter__(self) -> AgentClient:
        self._ws = await websockets.connect(self.url)
        self._task = asyncio.create_task(self._read())
        await until(lambda: any(f["type"] == "snapshot" for f in self.frames), what="snapshot")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._task is not None:
            await self._task

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self.frames.append(json.loads(raw))
        except websockets.ConnectionClosed as exc:
            self.closed = exc

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (f["call"]["call_id"], f["event"], f["call"]["state"])
            for f in self.frames
            if f["type"] == "event"
        ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSalesforce]:
    """A fake Salesforce over real HTTP (for the tests that connect ctibridge to one)."""
    async with FakeSalesforce() as server:
        yield server
