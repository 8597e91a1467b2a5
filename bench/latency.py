"""End-to-end latency: a Kazoo frame leaving the phone system → the call card on an agent's socket.

Process A (this script) runs the built-in Kazoo server, the agents' WebSocket clients and the
clock; process B is ``python -m ctibridge serve`` in a subprocess, configured through the
environment only (SQLite in a temporary data directory). Agents are created through the admin
REST API and each gets one inbound call: a carrier leg plus the agent's device leg, the
:func:`ctibridge.demo.scenarios.inbound.inbound_hold` events. The calls are driven in waves (all
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
import hashlib
import json
import logging
import random
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench._harness import (
    Client,
    FrameHandler,
    Phase,
    Recorder,
    Workload,
    card_handler,
    child,
    clean_env,
    counter_deltas,
    create_agents,
    detail,
    free_port,
    measure,
    raise_fd_limit,
    scrape,
    wait_healthy,
    wait_line,
    write_samples,
)
from bench._harness import report as _report
from ctibridge.demo.directory import Agent, Caller
from ctibridge.demo.kazoo.server import KazooServer
from ctibridge.demo.scenarios.inbound import inbound_hold
from ctibridge.demo.scenarios.script import ScenarioContext, greg_from_unix

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


# -- phase 1: ctibridge ---------------------------------------------------------------------------


def workload(kazoo: KazooServer, schedule: Sequence[Publish], opts: argparse.Namespace) -> Workload:
    """The schedule, published on the Kazoo websocket at ``--rate``."""

    async def send(item: Publish) -> None:
        await kazoo.publish(ACCOUNT_ID, item.data)

    return Workload(schedule, send, opts.rate, opts.warmup)


def ctibridge_env(kazoo: KazooServer, data_dir: str, port: int) -> dict[str, str]:
    return {
        **clean_env(),
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


def agent_bodies(agents: Sequence[Agent]) -> dict[str, dict[str, Any]]:
    """The ``PUT /api/agents/{id}`` body of each agent, by agent id."""
    return {
        f"bench-{agent.extension}": {
            "tenant_id": ACCOUNT_ID,
            "name": agent.name,
            "extension": agent.extension,
            "pbx_user_id": agent.user_id,
            "device_ids": [agent.device_id],
        }
        for agent in agents
    }


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
            tokens = await create_agents(http, agent_bodies(agents))
            before = await scrape(http)
            urls = [f"ws://127.0.0.1:{port}/ws?token={token}" for token in tokens]
            phase, recorder = await measure(
                workload(kazoo, schedule, opts), proc, urls, card_handler, lambda p: p.card_key
            )
            after = await scrape(http)
    if opts.samples:
        write_samples(opts.samples, recorder)
    return replace(phase, counters=counter_deltas(before, after))


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
    async with child(argv, clean_env(), log, stdout_pipe=True) as proc:
        await wait_line(proc, b"ready", log)
        iids = sorted({p.data["custom_channel_vars"]["call_interaction_id"] for p in schedule})
        urls = [f"ws://127.0.0.1:{port}/?call={iid}" for iid in iids]
        phase, _ = await measure(
            workload(kazoo, schedule, opts), proc, urls, relay_handler, lambda p: p.relay_key
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


def report(e2e: Phase, base: Phase, schedule: Sequence[Publish]) -> list[str]:
    return _report(e2e, base, len(schedule), peak_live_calls(schedule))


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
    raise_fd_limit(4 * opts.agents + 256)
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
