"""End-to-end latency: a Kazoo frame leaving the phone system → the call card on an agent's socket.

Process A (this script) runs the built-in Kazoo server, the agents' WebSocket clients and the
clock; process B is ``python -m ctibridge serve`` in a subprocess, configured through the
environment only (SQLite in a temporary data directory). Agents are created through the admin
REST API and each gets one inbound call: a carrier leg plus the agent's device leg, the
:func:`ctibridge.demo.scenarios.inbound_hold` events. The calls are driven in waves (all
ring, all answer, all hold, all resume, all end) at a fixed publish rate, so every call is
live through the middle waves. A sample is ``perf_counter()`` just before
``KazooServer.publish`` to ``perf_counter()`` when the matching card (call id + event name:
ringing, answered, held, resumed, ended) arrives on the agent's socket; the first 5 % are
warm-up.

The baseline replays the same frames, in the same run, through a relay that does no work
(a ``websockets`` client on the Kazoo socket, a ``websockets`` server for the clients; it
reads the interaction id and forwards the frame unchanged), also in a subprocess, after
ctibridge has stopped: what the transport and this harness cost by themselves.

Run ``.venv/bin/python bench/latency.py`` (``--quick``: 100 agents; ``--agents``, ``--rate``;
``--detail``: per-event percentiles; ``--samples FILE``: every sample as CSV; ``--profile
FILE``: ctibridge under cProfile; ``--set CTIBRIDGE_X=V``: try a setting). One figure a line,
``name: value unit``; exit status 1 when a card or frame never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import json
import logging
import math
import os
import random
import resource
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ctibridge.demo.directory import Agent, Caller
from ctibridge.demo.kazoo_server import KazooServer
from ctibridge.demo.scenarios import ScenarioContext, greg_from_unix, inbound_hold

ACCOUNT_ID = hashlib.sha256(b"ctibridge-bench/account").hexdigest()[:32]
API_KEY = hashlib.sha256(b"ctibridge-bench/api-key").hexdigest()
ADMIN_TOKEN = hashlib.sha256(b"ctibridge-bench/admin-token").hexdigest()
REALM = "bench.ctibridge.test"
_SELF = str(Path(__file__).resolve())

_SHAPE = (
    "CHANNEL_CREATE",  # carrier leg
    "CHANNEL_CREATE",  # agent's device leg → ringing
    "CHANNEL_ANSWER",  # device leg → answered
    "CHANNEL_ANSWER",  # carrier leg
    "CHANNEL_BRIDGE",
    "CHANNEL_HOLD",  # device leg → held
    "CHANNEL_UNHOLD",  # device leg → resumed
    "CHANNEL_DESTROY",  # device leg
    "CHANNEL_DESTROY",  # carrier leg, the last → ended
)
"""The events of one ``inbound_hold`` call, in order."""
_CARDS: dict[int, str] = {1: "ringing", 2: "answered", 5: "held", 6: "resumed", 8: "ended"}
"""Step index → the card event it must produce on the agent's socket."""

_START_TIMEOUT = 60.0
_SETUP_TIMEOUT = 180.0
_DRAIN_TIMEOUT = 30.0
_DRIVE_SLACK = 4.0
"""The publishing may take this many times its schedule (back-pressure) before we give up."""
_STOP_TIMEOUT = 10.0
_CONNECT_PARALLEL = 50
_HTTP_PARALLEL = 16
_HTTP_RETRIES = 5
_PR_SET_PDEATHSIG = 1

_T = TypeVar("_T")
_U = TypeVar("_U")


# -- the workload -------------------------------------------------------------------------------


def _hex(kind: str, index: int) -> str:
    return hashlib.sha256(f"ctibridge-bench/{kind}/{index}".encode()).hexdigest()[:32]


def bench_agents(count: int) -> list[Agent]:
    """``count`` Kazoo users with one softphone each; the ids are fixed by the index."""
    return [
        Agent(
            extension=str(10000 + i),
            first_name="Agent",
            last_name=f"{i:05d}",
            user_id=_hex("user", i),
            device_id=_hex("device", i),
            login=f"agent{i:05d}",
            password=f"bench-{i:05d}",
            sip_username=f"user_{i:06d}",
            sip_password=_hex("sip", i)[:16],
            did=f"+44207946{i % 10000:04d}",
        )
        for i in range(count)
    ]


@dataclass(frozen=True, slots=True)
class Publish:
    """One Kazoo event of the schedule and the keys its arrival is matched on."""

    data: dict[str, Any]
    card_key: str | None
    """``<call id>/<card event>`` when ctibridge must push a card for it."""
    relay_key: str | None
    """``<interaction id>/<leg call id>/<event name>``, set for the same timed events."""


def _call_steps(agent: Agent, index: int, start_greg: int) -> list[dict[str, Any]]:
    ctx = ScenarioContext(
        account=ACCOUNT_ID, realm=REALM, start_greg=start_greg, rng=random.Random(index)
    )
    caller = Caller(f"+447700900{index % 1000:03d}", f"Caller {index:05d}")
    steps = [step.data for step in inbound_hold(ctx, agent=agent, caller=caller, did=agent.did)]
    names = tuple(data["event_name"] for data in steps)
    if names != _SHAPE:
        raise RuntimeError(f"inbound_hold changed shape: {names}")
    interaction = f"{start_greg}-{index:08x}"  # unique per call, whatever the rng draws
    for step, data in enumerate(steps):
        data["custom_channel_vars"]["call_interaction_id"] = interaction
        data["msg_id"] = f"bench-{index:06d}-{step}"
    return steps


def build_schedule(agents: Sequence[Agent], start_greg: int) -> list[Publish]:
    """Every call's events, in waves: step 0 of every call, then step 1 of every call..."""
    calls = [_call_steps(agent, i, start_greg) for i, agent in enumerate(agents)]
    schedule: list[Publish] = []
    for step in range(len(_SHAPE)):
        for steps in calls:
            data = steps[step]
            card = _CARDS.get(step)
            iid = data["custom_channel_vars"]["call_interaction_id"]
            schedule.append(
                Publish(
                    data=data,
                    card_key=f"{iid}/{card}" if card else None,
                    relay_key=f"{iid}/{data['call_id']}/{data['event_name']}" if card else None,
                )
            )
    return schedule


def peak_live_calls(schedule: Sequence[Publish]) -> int:
    """Most calls between their first CREATE and their last DESTROY, over the schedule."""
    legs: dict[str, set[str]] = {}
    live = peak = 0
    for item in schedule:
        iid = item.data["custom_channel_vars"]["call_interaction_id"]
        name, leg = item.data["event_name"], item.data["call_id"]
        call = legs.setdefault(iid, set())
        if name == "CHANNEL_CREATE":
            live += not call
            call.add(leg)
        elif name == "CHANNEL_DESTROY" and leg in call:
            call.discard(leg)
            live -= not call
        peak = max(peak, live)
    return peak


def register(kazoo: KazooServer, agents: Sequence[Agent]) -> None:
    kazoo.add_account(ACCOUNT_ID, API_KEY)
    for agent in agents:
        kazoo.add_user(
            ACCOUNT_ID,
            agent.user_id,
            first_name=agent.first_name,
            last_name=agent.last_name,
            extension=agent.extension,
            email=agent.email,
        )
        kazoo.add_device(
            ACCOUNT_ID,
            agent.device_id,
            owner_id=agent.user_id,
            name=f"{agent.name} softphone",
            username=agent.sip_username,
        )


# -- timing -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Recorder:
    """Send times by key, then the first arrival of each."""

    sent_at: dict[str, float] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    arrived_at: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def sent(self, key: str, at: float) -> None:
        self.sent_at[key] = at
        self.order.append(key)
        self.done.clear()

    def received(self, key: str, at: float) -> None:
        if key in self.sent_at and key not in self.arrived_at:
            self.arrived_at[key] = at
            if len(self.arrived_at) == len(self.sent_at):
                self.done.set()

    @property
    def missing(self) -> int:
        return len(self.sent_at) - len(self.arrived_at)

    def missing_keys(self) -> list[str]:
        return [k for k in self.order if k not in self.arrived_at]

    def kept(self, warmup: float) -> list[tuple[str, float]]:
        """(key, milliseconds) in publish order, without the first ``warmup`` fraction."""
        keep = self.order[int(len(self.order) * warmup) :]
        arrived, sent = self.arrived_at, self.sent_at
        return [(k, (arrived[k] - sent[k]) * 1000.0) for k in keep if k in arrived]


def by_event(samples: Sequence[tuple[str, float]]) -> dict[str, list[float]]:
    """Latencies grouped by the last part of their key (card or Kazoo event name)."""
    groups: dict[str, list[float]] = {}
    for key, latency in samples:
        groups.setdefault(key.rsplit("/", 1)[1], []).append(latency)
    return groups


def write_samples(path: Path, recorder: Recorder) -> None:
    """CSV: seconds since the first timed publish, latency in ms, key (nothing for lost ones)."""
    if not recorder.order:
        return
    first = recorder.sent_at[recorder.order[0]]
    with path.open("w") as out:
        out.write("sent_s,latency_ms,key\n")
        for key in recorder.order:
            sent = recorder.sent_at[key]
            arrived = recorder.arrived_at.get(key)
            latency = f"{(arrived - sent) * 1000.0:.3f}" if arrived is not None else ""
            out.write(f"{sent - first:.6f},{latency},{key}\n")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Driven:
    rate: float
    """Events per second actually published."""
    max_lag: float
    """Seconds: how far behind its schedule the latest publish started (back-pressure)."""


async def drive(
    kazoo: KazooServer,
    schedule: Sequence[Publish],
    rate: float,
    key_of: Callable[[Publish], str | None],
    recorder: Recorder,
) -> Driven:
    """Publish the schedule at ``rate`` events/s, each at its own deadline."""
    clock = time.perf_counter
    start = clock()
    max_lag = 0.0
    for n, item in enumerate(schedule):
        due = start + n / rate
        now = clock()
        if now < due:
            await asyncio.sleep(due - now)
        key = key_of(item)
        now = clock()
        max_lag = max(max_lag, now - due)
        if key is not None:
            recorder.sent(key, now)
        await kazoo.publish(ACCOUNT_ID, item.data)
    elapsed = clock() - start
    return Driven((len(schedule) - 1) / elapsed if elapsed > 0 else float("inf"), max_lag)


async def drain(recorder: Recorder) -> None:
    """Until every timed event has arrived, or ``_DRAIN_TIMEOUT``."""
    if recorder.missing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), _DRAIN_TIMEOUT)


# -- WebSocket clients --------------------------------------------------------------------------

FrameHandler = Callable[["Client", str | bytes, float], None]


class Client:
    """One socket in process A: frames go to ``handler`` with their arrival time."""

    def __init__(self, ws: ClientConnection, handler: FrameHandler) -> None:
        self.ws = ws
        self.ready = asyncio.Event()
        self._handler = handler
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        try:
            async for frame in self.ws:
                self._handler(self, frame, time.perf_counter())
        except ConnectionClosed:
            pass
        except Exception as exc:  # a frame we cannot read: this client stops counting
            _progress(f"a client stopped: {exc!r}")

    @property
    def open(self) -> bool:
        return not self.task.done()


async def in_parallel(
    work: Callable[[_T], Awaitable[_U]], items: Sequence[_T], limit: int
) -> list[_U]:
    """``work`` on every item, at most ``limit`` at once, all within ``_SETUP_TIMEOUT``."""
    gate = asyncio.Semaphore(limit)

    async def one(item: _T) -> _U:
        async with gate:
            return await work(item)

    try:
        async with asyncio.timeout(_SETUP_TIMEOUT), asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from failed
    return [task.result() for task in tasks]


async def connect_clients(urls: Sequence[str], handler: FrameHandler) -> list[Client]:
    """Open every socket (a few at a time) and wait until each says it is ready."""
    opened: list[Client] = []

    async def one(url: str) -> Client:
        # No protocol pings from 1,000 clients mid-measurement (browsers send none either).
        ws = await connect(url, ping_interval=None, max_size=2**22)
        client = Client(ws, handler)
        opened.append(client)
        await client.ready.wait()
        return client

    try:
        return await in_parallel(one, urls, _CONNECT_PARALLEL)
    except BaseException:
        await close_clients(opened)
        raise


async def close_clients(clients: Sequence[Client]) -> None:
    async def one(client: Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.ws.close(), _STOP_TIMEOUT)
        client.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client.task

    await asyncio.gather(*(one(c) for c in clients))


# -- subprocesses -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mib(pid: int) -> float:
    """``VmHWM``: the most resident memory the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmHWM for process {pid}")


@contextlib.asynccontextmanager
async def child(
    argv: Sequence[str], env: dict[str, str], log: Path, *, stdout_pipe: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A subprocess that is always stopped: SIGTERM, then SIGKILL after a grace period."""
    with log.open("wb") as sink:
        out = asyncio.subprocess.PIPE if stdout_pipe else sink
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=out, stderr=sink, preexec_fn=_die_with_parent
        )
    try:
        yield proc
    finally:
        await stop_child(proc)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench dies, even by SIGKILL (Linux)."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def stop_child(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
    except BaseException:  # cancelled (Ctrl-C): do not leave it running
        _kill(proc)
        raise


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CTIBRIDGE_")}


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _log_tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


# -- one measured run (either target) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phase:
    latencies: list[float]
    """Milliseconds, warm-up left out."""
    missing: int
    driven: Driven
    connected: int
    rss_mib: float
    cpu_seconds: float
    """Process B's CPU time (user + system) while the schedule was driven and drained."""
    by_event: dict[str, list[float]]
    counters: dict[str, float] = field(default_factory=dict)
    """ctibridge's metrics over the run (empty for the relay)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    kazoo: KazooServer,
    schedule: Sequence[Publish],
    opts: argparse.Namespace,
    proc: asyncio.subprocess.Process,
    urls: Sequence[str],
    handler: Callable[[Recorder], FrameHandler],
    key_of: Callable[[Publish], str | None],
) -> tuple[Phase, Recorder]:
    """Connect the clients, drive the schedule, wait for the stragglers, disconnect."""
    recorder = Recorder()
    clients = await connect_clients(urls, handler(recorder))
    _progress(f"pid {proc.pid}: {len(clients)} clients ready; driving {len(schedule)} events")
    try:
        cpu = cpu_seconds(proc.pid)
        async with asyncio.timeout(_DRIVE_SLACK * len(schedule) / opts.rate + _DRAIN_TIMEOUT):
            driven = await drive(kazoo, schedule, opts.rate, key_of, recorder)
        await drain(recorder)
        cpu = cpu_seconds(proc.pid) - cpu
        connected = sum(c.open for c in clients)
        rss = peak_rss_mib(proc.pid)
    finally:
        await close_clients(clients)
    for key in recorder.missing_keys()[:10]:
        _progress(f"nothing arrived for {key}")
    kept = recorder.kept(opts.warmup)
    latencies = [latency for _, latency in kept]
    return Phase(latencies, recorder.missing, driven, connected, rss, cpu, by_event(kept)), recorder


# -- phase 1: ctibridge ---------------------------------------------------------------------------


def ctibridge_env(kazoo: KazooServer, data_dir: str, port: int) -> dict[str, str]:
    return {
        **_clean_env(),
        "CTIBRIDGE_DATA_DIR": data_dir,
        "CTIBRIDGE_WEB_PORT": str(port),
        "CTIBRIDGE_WEB_ADMIN_TOKEN": ADMIN_TOKEN,
        "CTIBRIDGE_KAZOO_ENABLED": "true",
        "CTIBRIDGE_KAZOO_API_URL": kazoo.url,
        "CTIBRIDGE_KAZOO_WS_URL": kazoo.ws_url,
        "CTIBRIDGE_KAZOO_API_KEY": API_KEY,
        "CTIBRIDGE_KAZOO_ACCOUNT_IDS": ACCOUNT_ID,
        "CTIBRIDGE_LOG_LEVEL": "WARNING",
    }


async def wait_healthy(
    http: httpx.AsyncClient, proc: asyncio.subprocess.Process, log: Path
) -> None:
    """Until ``/healthz`` answers and every connector says it is connected."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"ctibridge exited with {proc.returncode}:\n{_log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            reply = await http.get("/healthz")
            connectors = reply.json().get("connectors") or []
            if reply.status_code == 200 and connectors and all(c["connected"] for c in connectors):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"ctibridge was not healthy within {_START_TIMEOUT} s:\n{_log_tail(log)}")


async def create_agents(http: httpx.AsyncClient, agents: Sequence[Agent]) -> list[str]:
    """``PUT /api/agents/{id}`` and ``POST /api/agents/{id}/token`` for each; their tokens."""

    async def one(agent: Agent) -> str:
        agent_id = f"bench-{agent.extension}"
        body = {
            "tenant_id": ACCOUNT_ID,
            "name": agent.name,
            "extension": agent.extension,
            "pbx_user_id": agent.user_id,
            "device_ids": [agent.device_id],
        }
        await _admin_call(http, "PUT", f"/api/agents/{agent_id}", body)
        reply = await _admin_call(http, "POST", f"/api/agents/{agent_id}/token")
        token: str = reply.json()["token"]
        return token

    return await in_parallel(one, agents, _HTTP_PARALLEL)


async def _admin_call(
    http: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> httpx.Response:
    """One admin request; a 503 (storage busy, e.g. SQLite locked on a loaded host) is retried."""
    for attempt in range(_HTTP_RETRIES):
        reply = await http.request(method, path, json=body)
        if reply.status_code != 503 or attempt == _HTTP_RETRIES - 1:
            break
        await asyncio.sleep(0.2 * 2**attempt)
    reply.raise_for_status()
    return reply


def card_handler(recorder: Recorder) -> FrameHandler:
    """Agent sockets: ``snapshot`` makes the client ready; ``event`` frames are arrivals."""

    def on_frame(client: Client, frame: str | bytes, at: float) -> None:
        message = json.loads(frame)
        kind = message.get("type")
        if kind == "event":
            recorder.received(f"{message['call']['call_id']}/{message['event']}", at)
        elif kind == "snapshot":
            client.ready.set()

    return on_frame


async def measure_ctibridge(
    kazoo: KazooServer,
    agents: Sequence[Agent],
    schedule: Sequence[Publish],
    opts: argparse.Namespace,
    workdir: Path,
) -> Phase:
    port = free_port()
    log = workdir / "ctibridge.log"
    profile = ["-m", "cProfile", "-o", str(opts.profile)] if opts.profile else []
    argv = [sys.executable, *profile, "-m", "ctibridge", "serve"]
    env = ctibridge_env(kazoo, str(workdir / "data"), port)
    env.update(item.split("=", 1) for item in opts.set)
    async with child(argv, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as http:
            await wait_healthy(http, proc, log)
            tokens = await create_agents(http, agents)
            before = await scrape(http)
            urls = [f"ws://127.0.0.1:{port}/ws?token={token}" for token in tokens]
            phase, recorder = await measure(
                kazoo, schedule, opts, proc, urls, card_handler, lambda p: p.card_key
            )
            after = await scrape(http)
    if opts.samples:
        write_samples(opts.samples, recorder)
    counters = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in _COUNTERS}
    return replace(phase, counters=counters)


_COUNTERS = (
    "ctibridge_channel_events_total",
    "ctibridge_call_events_total",
    "ctibridge_ws_dropped_total",
    "ctibridge_storage_flush_seconds_count",
    "ctibridge_storage_flush_seconds_sum",
)
"""ctibridge's own counters, read from ``/metrics`` before and after the run."""


async def scrape(http: httpx.AsyncClient) -> dict[str, float]:
    """``/metrics`` as metric name → value, summed over labels."""
    reply = await http.get("/metrics")
    reply.raise_for_status()
    values: dict[str, float] = {}
    for line in reply.text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name = series.split("{", 1)[0]
            values[name] = values.get(name, 0.0) + float(value)
    return values


# -- phase 2: the baseline relay ----------------------------------------------------------------


async def kazoo_token(kazoo: KazooServer) -> str:
    async with httpx.AsyncClient(base_url=kazoo.url, timeout=10.0) as http:
        reply = await http.put("/v2/api_auth", json={"data": {"api_key": API_KEY}})
        reply.raise_for_status()
        token: str = reply.json()["auth_token"]
        return token


def relay_handler(recorder: Recorder) -> FrameHandler:
    """Relay sockets: ``ready`` makes the client ready; Kazoo ``event`` frames are arrivals."""

    def on_frame(client: Client, frame: str | bytes, at: float) -> None:
        message = json.loads(frame)
        if message.get("action") == "event":
            data = message["data"]
            iid = data["custom_channel_vars"]["call_interaction_id"]
            recorder.received(f"{iid}/{data['call_id']}/{data['event_name']}", at)
        elif message.get("type") == "ready":
            client.ready.set()

    return on_frame


async def measure_relay(
    kazoo: KazooServer, schedule: Sequence[Publish], opts: argparse.Namespace, workdir: Path
) -> Phase:
    port = free_port()
    log = workdir / "relay.log"
    token = await kazoo_token(kazoo)
    argv = [sys.executable, _SELF, "--relay", str(port), kazoo.ws_url, token]
    async with child(argv, _clean_env(), log, stdout_pipe=True) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), _START_TIMEOUT)
        if line.strip() != b"ready":
            raise RuntimeError(f"the relay did not start:\n{_log_tail(log)}")
        iids = sorted({p.data["custom_channel_vars"]["call_interaction_id"] for p in schedule})
        urls = [f"ws://127.0.0.1:{port}/?call={iid}" for iid in iids]
        phase, _ = await measure(
            kazoo, schedule, opts, proc, urls, relay_handler, lambda p: p.relay_key
        )
    return phase


async def relay(port: int, kazoo_ws_url: str, token: str) -> None:
    """The baseline (process B'): Kazoo frames to the client of their interaction, unchanged."""
    clients: dict[str, ServerConnection] = {}

    async def on_client(ws: ServerConnection) -> None:
        assert ws.request is not None
        call = parse_qs(urlsplit(ws.request.path).query)["call"][0]
        clients[call] = ws
        try:
            await ws.send('{"type": "ready"}')
            await ws.wait_closed()
        finally:
            clients.pop(call, None)

    async with connect(kazoo_ws_url, ping_interval=None, max_size=2**22) as kazoo:
        subscribe = {
            "action": "subscribe",
            "auth_token": token,
            "request_id": "relay",
            "data": {"account_id": ACCOUNT_ID, "binding": "call.*.*"},
        }
        await kazoo.send(json.dumps(subscribe))
        reply = json.loads(await kazoo.recv())
        if reply.get("status") != "success":
            raise RuntimeError(f"subscribe refused: {reply}")
        async with serve(on_client, "127.0.0.1", port, ping_interval=None):
            print("ready", flush=True)
            async for frame in kazoo:
                data = json.loads(frame).get("data") or {}
                target = clients.get(data.get("custom_channel_vars", {}).get("call_interaction_id"))
                if target is not None:
                    await target.send(frame)


# -- main ---------------------------------------------------------------------------------------


def _figures(name: str, phase: Phase) -> list[str]:
    if not phase.latencies:
        return [f"{name}_samples: 0 count"]
    values = phase.latencies
    return [
        f"{name}_p50: {percentile(values, 50):.3f} ms",
        f"{name}_p90: {percentile(values, 90):.3f} ms",
        f"{name}_p99: {percentile(values, 99):.3f} ms",
        f"{name}_max: {max(values):.3f} ms",
    ]


def detail(name: str, phase: Phase) -> list[str]:
    """Per event: ``<name>_<event>_latency_p50`` and ``_p99``."""
    lines: list[str] = []
    for event, values in phase.by_event.items():
        prefix = f"{name}_{event.lower()}_latency"
        lines += [
            f"{prefix}_p50: {percentile(values, 50):.3f} ms",
            f"{prefix}_p99: {percentile(values, 99):.3f} ms",
        ]
    return lines


def _server_counters(counters: dict[str, float]) -> list[str]:
    flushes = counters.get("ctibridge_storage_flush_seconds_count", 0.0)
    flush_ms = counters.get("ctibridge_storage_flush_seconds_sum", 0.0) * 1000.0
    return [
        f"server_channel_events: {counters.get('ctibridge_channel_events_total', 0):.0f} count",
        f"server_card_events: {counters.get('ctibridge_call_events_total', 0):.0f} count",
        f"server_ws_dropped: {counters.get('ctibridge_ws_dropped_total', 0):.0f} count",
        f"server_storage_flushes: {flushes:.0f} count",
        f"server_storage_flush_mean: {flush_ms / flushes if flushes else 0.0:.1f} ms",
    ]


def report(e2e: Phase, base: Phase, schedule: Sequence[Publish]) -> list[str]:
    events = len(schedule)
    return [
        *_figures("e2e_latency", e2e),
        *_figures("baseline_relay_latency", base),
        f"samples: {len(e2e.latencies)} count",
        f"baseline_samples: {len(base.latencies)} count",
        f"missing_cards: {e2e.missing} count",
        f"baseline_missing_frames: {base.missing} count",
        f"concurrent_calls: {peak_live_calls(schedule)} count",
        f"connected_agents: {e2e.connected} count",
        f"events_published: {events} count",
        f"publish_rate: {e2e.driven.rate:.0f} events/s",
        f"publish_lag_max: {e2e.driven.max_lag * 1000.0:.1f} ms",
        f"baseline_publish_rate: {base.driven.rate:.0f} events/s",
        f"baseline_publish_lag_max: {base.driven.max_lag * 1000.0:.1f} ms",
        f"server_rss: {e2e.rss_mib:.1f} MiB",
        f"server_cpu_per_event: {e2e.cpu_seconds / events * 1000.0:.3f} ms",
        f"baseline_relay_rss: {base.rss_mib:.1f} MiB",
        f"baseline_relay_cpu_per_event: {base.cpu_seconds / events * 1000.0:.3f} ms",
        *_server_counters(e2e.counters),
        f"host_cpus: {os.cpu_count()} count",
        f"host_load_1m: {os.getloadavg()[0]:.2f} runnable",
    ]


async def bench(opts: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    agents = bench_agents(opts.agents)
    schedule = build_schedule(agents, greg_from_unix(time.time()))
    kazoo = KazooServer(port=0)
    register(kazoo, agents)
    await kazoo.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ctibridge-bench-") as tmp:
            e2e = await measure_ctibridge(kazoo, agents, schedule, opts, Path(tmp))
            kazoo.reset()
            base = await measure_relay(kazoo, schedule, opts, Path(tmp))
    finally:
        await kazoo.stop()
    lines = report(e2e, base, schedule)
    if opts.detail:
        lines += detail("e2e", e2e) + detail("baseline", base)
    for line in lines:
        print(line, flush=True)
    if e2e.missing or base.missing or e2e.connected < len(agents):
        print("bench: some cards or frames never arrived", file=sys.stderr)
        return 1
    return 0


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000, help="agents = concurrent calls")
    parser.add_argument("--rate", type=float, default=1000.0, help="Kazoo events per second")
    parser.add_argument("--quick", action="store_true", help="a smoke run with 100 agents")
    parser.add_argument("--warmup", type=float, default=0.05, help="fraction of samples skipped")
    parser.add_argument("--detail", action="store_true", help="also p50/p99 per event")
    parser.add_argument("--samples", type=Path, help="write ctibridge's samples to this CSV")
    parser.add_argument(
        "--profile", type=Path, help="run ctibridge under cProfile, writing its stats here"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CTIBRIDGE_X=VALUE",
        help="extra environment for ctibridge (repeatable), e.g. a setting to try",
    )
    parser.add_argument("--relay", nargs=3, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if opts.relay:
        port, url, token = opts.relay
        asyncio.run(relay(int(port), url, token))
        return 0
    if opts.quick:
        opts.agents = 100
    if opts.agents < 1 or opts.rate <= 0 or not 0 <= opts.warmup < 1:
        print("bench: --agents >= 1, --rate > 0 and 0 <= --warmup < 1", file=sys.stderr)
        return 2
    if any("=" not in item for item in opts.set):
        print("bench: --set takes NAME=VALUE", file=sys.stderr)
        return 2
    _raise_fd_limit(4 * opts.agents + 256)
    try:
        return asyncio.run(bench(opts))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, TimeoutError, httpx.HTTPError) as exc:
        print(f"bench: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
