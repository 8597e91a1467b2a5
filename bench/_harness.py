"""What the end-to-end latency benches share: timing, WebSocket clients, subprocesses, figures.

``bench/latency.py`` (Kazoo) and ``bench/latency_ami.py`` (Asterisk AMI) differ only in how
they speak to the phone system and to their baseline relay; everything here is blind to the
PBX. A run: :func:`measure` connects one client per agent, :func:`drive` sends a schedule at
a fixed rate through a ``send`` callback while a :class:`Recorder` keeps the send time of
each timed item and the first arrival of its key, then :func:`drain` waits for stragglers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

START_TIMEOUT = 60.0
SETUP_TIMEOUT = 180.0
DRAIN_TIMEOUT = 30.0
DRIVE_SLACK = 4.0
"""The publishing may take this many times its schedule (back-pressure) before we give up."""
STOP_TIMEOUT = 10.0
CONNECT_PARALLEL = 50
HTTP_PARALLEL = 16
HTTP_RETRIES = 5
_PR_SET_PDEATHSIG = 1

_T = TypeVar("_T")
_U = TypeVar("_U")


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
    """Latencies grouped by the last part of their key (card or PBX event name)."""
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
    schedule: Sequence[_T],
    send: Callable[[_T], Awaitable[object]],
    rate: float,
    key_of: Callable[[_T], str | None],
    recorder: Recorder,
) -> Driven:
    """Send the schedule at ``rate`` events/s, each at its own deadline."""
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
        await send(item)
    elapsed = clock() - start
    return Driven((len(schedule) - 1) / elapsed if elapsed > 0 else float("inf"), max_lag)


async def drain(recorder: Recorder) -> None:
    """Until every timed event has arrived, or ``DRAIN_TIMEOUT``."""
    if recorder.missing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.done.wait(), DRAIN_TIMEOUT)


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
            progress(f"a client stopped: {exc!r}")

    @property
    def open(self) -> bool:
        return not self.task.done()


async def in_parallel(
    work: Callable[[_T], Awaitable[_U]], items: Sequence[_T], limit: int
) -> list[_U]:
    """``work`` on every item, at most ``limit`` at once, all within ``SETUP_TIMEOUT``."""
    gate = asyncio.Semaphore(limit)

    async def one(item: _T) -> _U:
        async with gate:
            return await work(item)

    try:
        async with asyncio.timeout(SETUP_TIMEOUT), asyncio.TaskGroup() as group:
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
        return await in_parallel(one, urls, CONNECT_PARALLEL)
    except BaseException:
        await close_clients(opened)
        raise


async def close_clients(clients: Sequence[Client]) -> None:
    async def one(client: Client) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.ws.close(), STOP_TIMEOUT)
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
    except BaseException:  # cancelled (Ctrl-C): do not leave it running
        _kill(proc)
        raise


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def wait_line(proc: asyncio.subprocess.Process, expected: bytes, log: Path) -> None:
    """The child's first stdout line must be ``expected`` (a relay says ``ready``)."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
    if line.strip() != expected:
        raise RuntimeError(f"the relay did not start:\n{log_tail(log)}")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CTIBRIDGE_")}


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def log_tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


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


@dataclass(frozen=True, slots=True)
class Workload:
    """What :func:`measure` drives: ``schedule`` through ``send`` at ``rate`` events/s."""

    schedule: Sequence[Any]
    send: Callable[[Any], Awaitable[object]]
    rate: float
    warmup: float
    """Fraction of the timed items left out of the figures."""


async def measure(
    work: Workload,
    proc: asyncio.subprocess.Process,
    urls: Sequence[str],
    handler: Callable[[Recorder], FrameHandler],
    key_of: Callable[[Any], str | None],
) -> tuple[Phase, Recorder]:
    """Connect the clients, drive the schedule, wait for the stragglers, disconnect."""
    recorder = Recorder()
    schedule = work.schedule
    clients = await connect_clients(urls, handler(recorder))
    progress(f"pid {proc.pid}: {len(clients)} clients ready; driving {len(schedule)} events")
    try:
        cpu = cpu_seconds(proc.pid)
        async with asyncio.timeout(DRIVE_SLACK * len(schedule) / work.rate + DRAIN_TIMEOUT):
            driven = await drive(schedule, work.send, work.rate, key_of, recorder)
        await drain(recorder)
        cpu = cpu_seconds(proc.pid) - cpu
        connected = sum(c.open for c in clients)
        rss = peak_rss_mib(proc.pid)
    finally:
        await close_clients(clients)
    for key in recorder.missing_keys()[:10]:
        progress(f"nothing arrived for {key}")
    kept = recorder.kept(work.warmup)
    latencies = [latency for _, latency in kept]
    return Phase(latencies, recorder.missing, driven, connected, rss, cpu, by_event(kept)), recorder


# -- ctibridge's side ---------------------------------------------------------------------------


async def wait_healthy(
    http: httpx.AsyncClient, proc: asyncio.subprocess.Process, log: Path
) -> None:
    """Until ``/healthz`` answers and every connector says it is connected."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"ctibridge exited with {proc.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            reply = await http.get("/healthz")
            connectors = reply.json().get("connectors") or []
            if reply.status_code == 200 and connectors and all(c["connected"] for c in connectors):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"ctibridge was not healthy within {START_TIMEOUT} s:\n{log_tail(log)}")


async def admin_call(
    http: httpx.AsyncClient, method: str, path: str, body: Any = None
) -> httpx.Response:
    """One admin request; a 503 (storage busy, e.g. SQLite locked on a loaded host) is retried."""
    for attempt in range(HTTP_RETRIES):
        reply = await http.request(method, path, json=body)
        if reply.status_code != 503 or attempt == HTTP_RETRIES - 1:
            break
        await asyncio.sleep(0.2 * 2**attempt)
    reply.raise_for_status()
    return reply


async def create_agents(http: httpx.AsyncClient, bodies: dict[str, dict[str, Any]]) -> list[str]:
    """``PUT /api/agents/{id}`` with each body, then ``POST /api/agents/{id}/token``; the
    tokens, in the order of ``bodies``."""

    async def one(agent_id: str) -> str:
        await admin_call(http, "PUT", f"/api/agents/{agent_id}", bodies[agent_id])
        reply = await admin_call(http, "POST", f"/api/agents/{agent_id}/token")
        token: str = reply.json()["token"]
        return token

    return await in_parallel(one, list(bodies), HTTP_PARALLEL)


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


COUNTERS = (
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


def counter_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in COUNTERS}


# -- figures ------------------------------------------------------------------------------------


def figures(name: str, phase: Phase) -> list[str]:
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


def server_counters(counters: dict[str, float]) -> list[str]:
    flushes = counters.get("ctibridge_storage_flush_seconds_count", 0.0)
    flush_ms = counters.get("ctibridge_storage_flush_seconds_sum", 0.0) * 1000.0
    return [
        f"server_channel_events: {counters.get('ctibridge_channel_events_total', 0):.0f} count",
        f"server_card_events: {counters.get('ctibridge_call_events_total', 0):.0f} count",
        f"server_ws_dropped: {counters.get('ctibridge_ws_dropped_total', 0):.0f} count",
        f"server_storage_flushes: {flushes:.0f} count",
        f"server_storage_flush_mean: {flush_ms / flushes if flushes else 0.0:.1f} ms",
    ]


def report(e2e: Phase, base: Phase, events: int, concurrent: int) -> list[str]:
    """Every figure of a run, one ``name: value unit`` a line."""
    return [
        *figures("e2e_latency", e2e),
        *figures("baseline_relay_latency", base),
        f"samples: {len(e2e.latencies)} count",
        f"baseline_samples: {len(base.latencies)} count",
        f"missing_cards: {e2e.missing} count",
        f"baseline_missing_frames: {base.missing} count",
        f"concurrent_calls: {concurrent} count",
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
        *server_counters(e2e.counters),
        f"host_cpus: {os.cpu_count()} count",
        f"host_load_1m: {os.getloadavg()[0]:.2f} runnable",
    ]
