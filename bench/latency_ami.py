"""End-to-end latency: an AMI event frame leaving Asterisk → the call card on an agent's socket.

The Asterisk version of ``bench/latency.py`` (same structure, same figures, each name with an
``ami_`` prefix). Process A (this script) runs the fake AMI server of the tests
(``tests/fakes/fake_ami.py``: real TCP, MD5 login, ``CoreShowChannels``), the agents'
WebSocket clients and the clock; process B is ``python -m ctibridge serve`` in a subprocess,
configured through the environment only (SQLite in a temporary data directory), logged in to
the fake AMI. Agents are created through the admin REST API (tenant ``asterisk``, extension
``1xxxx``, device ``PJSIP/1xxxx``) and each gets one inbound call shaped like the genuine
capture ``tests/fixtures/ami/inbound_answered.ami``: a ``PJSIP/carrier-…`` trunk leg dials
the agent's ``PJSIP/1xxxx-…`` leg, which rings, answers, is bridged, holds, resumes, and
both hang up; fresh Uniqueid/Linkedid per call, our own timestamps.

The calls are driven in waves (every call's first event, then every call's second...) at a
fixed rate, so every call is live through the middle waves. A sample is ``perf_counter()``
just before ``FakeAmi.push`` of the event that must produce a card, to ``perf_counter()``
when that card (call id = Linkedid + event name: ringing, answered, held, resumed, ended)
arrives on the agent's socket; the first 5 % are warm-up.

The baseline pushes the same frames, in the same run, through a relay that does no work (a
TCP client that logs in to the fake AMI, splits the stream into messages, reads the
``Linkedid`` and forwards the message unchanged to that call's agent over a ``websockets``
server), also in a subprocess, after ctibridge has stopped.

Run ``.venv/bin/python bench/latency_ami.py`` (``--quick``: 100 agents; ``--agents``,
``--rate``; ``--detail``: per-event percentiles; ``--samples FILE``: every sample as CSV;
``--set CTIBRIDGE_X=V``: try a setting). One figure a line, ``name: value unit``; exit
status 1 when a card or frame never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
from tests.fakes.fake_ami import SECRET, USERNAME, FakeAmi, event_bytes
from websockets.asyncio.server import ServerConnection, serve

from bench._harness import (
    START_TIMEOUT,
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
    report,
    scrape,
    wait_healthy,
    wait_line,
    write_samples,
)

TENANT = "asterisk"
ADMIN_TOKEN = "ctibridge-bench-ami-admin-token"
PREFIX = "ami_"
_SELF = str(Path(__file__).resolve())
_FIRST_EXTENSION = 10000
_MAX_AGENTS = 90000
"""Extensions stay five digits (``calls.internal_digits``): 10000-99999."""

_SHAPE = (
    "Newchannel",  # 0 carrier leg, state Ring
    "Newchannel",  # 1 agent's leg, state Down → ringing (the agent's phone is in the call)
    "DialBegin",  # 2 carrier → agent
    "Newstate",  # 3 agent's leg Ringing
    "Newstate",  # 4 agent's leg Up → answered
    "Newstate",  # 5 carrier leg Up
    "BridgeEnter",  # 6 agent's leg
    "BridgeEnter",  # 7 carrier leg
    "Hold",  # 8 agent's leg → held
    "Unhold",  # 9 agent's leg → resumed
    "Hangup",  # 10 carrier leg
    "Hangup",  # 11 agent's leg, the last → ended
)
"""The AMI events of one call, in order."""
_CARDS: dict[int, str] = {1: "ringing", 4: "answered", 8: "held", 9: "resumed", 11: "ended"}
"""Step index → the card event it must produce on the agent's socket."""


# -- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchCall:
    """One agent and its call: the ids Asterisk would give its two channels."""

    index: int
    extension: str
    linkedid: str
    """The carrier leg's Uniqueid, hence the call id ctibridge shows."""
    agent_uniqueid: str
    carrier_channel: str
    agent_channel: str
    caller: str


def bench_calls(count: int, epoch: int) -> list[BenchCall]:
    """``count`` agents, one call each; Uniqueids ``<epoch>.<sequence>`` as Asterisk makes them."""
    calls = []
    for i in range(count):
        ext = str(_FIRST_EXTENSION + i)
        calls.append(
            BenchCall(
                index=i,
                extension=ext,
                linkedid=f"{epoch}.{2 * i}",
                agent_uniqueid=f"{epoch}.{2 * i + 1}",
                carrier_channel=f"PJSIP/carrier-{2 * i:08x}",
                agent_channel=f"PJSIP/{ext}-{2 * i + 1:08x}",
                caller=f"1555{i % 10_000_000:07d}",
            )
        )
    return calls


@dataclass(frozen=True, slots=True)
class Push:
    """One AMI event of the schedule, on the wire, and the keys its arrival is matched on."""

    data: bytes
    linkedid: str
    card_key: str | None
    """``<Linkedid>/<card event>`` when ctibridge must push a card for it."""
    relay_key: str | None
    """``<Linkedid>/<Uniqueid>/<Event>-<ChannelStateDesc>`` (:func:`relay_key`), set for the
    same timed events."""


def _snapshot(
    call: BenchCall, *, agent: bool, state: str, prefix: str = ""
) -> list[tuple[str, str]]:
    """The channel snapshot fields of one leg, as Asterisk 22 sends them."""
    codes = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6"}
    me, them = (call.extension, f"Agent {call.extension}"), (call.caller, "Bench Caller")
    if agent:
        channel, uniqueid, context, own, other = (
            call.agent_channel,
            call.agent_uniqueid,
            "internal",
            me,
            them,
        )
    else:
        channel, uniqueid, context, own, other = (
            call.carrier_channel,
            call.linkedid,
            "from-carrier",
            them,
            me,
        )
    if state in ("Down", "Ring") and not prefix:  # nobody connected yet
        other = ("<unknown>", "<unknown>")
    fields = [
        ("Channel", channel),
        ("ChannelState", codes[state]),
        ("ChannelStateDesc", state),
        ("CallerIDNum", own[0]),
        ("CallerIDName", own[1]),
        ("ConnectedLineNum", other[0]),
        ("ConnectedLineName", other[1]),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", context),
        ("Exten", "s" if agent and state == "Down" and not prefix else "5550100"),
        ("Priority", "1" if agent else "3"),
        ("Uniqueid", uniqueid),
        ("Linkedid", call.linkedid),
    ]
    return [(prefix + key, value) for key, value in fields]


def _event(name: str, at: float, fields: list[tuple[str, str]]) -> bytes:
    head = [("Event", name), ("Privilege", "call,all"), ("Timestamp", f"{at:.6f}")]
    return event_bytes([*head, *fields])


def call_events(call: BenchCall, start: float) -> list[bytes]:
    """The twelve events of ``_SHAPE`` for one call, stamped from ``start`` (epoch seconds)."""
    at = [start + step + call.index * 1e-6 for step in range(len(_SHAPE))]
    bridge = [
        ("BridgeUniqueid", f"bench-bridge-{call.index:08d}"),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeVideoSourceMode", "none"),
    ]
    hangup = [("Cause", "16"), ("Cause-txt", "Normal Clearing")]

    def carrier(state: str) -> list[tuple[str, str]]:
        return _snapshot(call, agent=False, state=state)

    def agent(state: str) -> list[tuple[str, str]]:
        return _snapshot(call, agent=True, state=state)

    dest = _snapshot(call, agent=True, state="Down", prefix="Dest")
    fields = [
        carrier("Ring"),
        agent("Down"),
        [*carrier("Ring"), *dest, ("DialString", call.extension)],
        agent("Ringing"),
        agent("Up"),
        carrier("Up"),
        [*bridge, ("BridgeNumChannels", "1"), *agent("Up")],
        [*bridge, ("BridgeNumChannels", "2"), *carrier("Up")],
        [*agent("Up"), ("MusicClass", "default")],
        agent("Up"),
        [*carrier("Up"), *hangup],
        [*agent("Up"), *hangup],
    ]
    return [_event(name, at[i], fields[i]) for i, name in enumerate(_SHAPE)]


def build_schedule(calls: Sequence[BenchCall], start: float) -> list[Push]:
    """Every call's events, in waves: step 0 of every call, then step 1 of every call..."""
    per_call = [call_events(call, start) for call in calls]
    schedule: list[Push] = []
    for step in range(len(_SHAPE)):
        for call, events in zip(calls, per_call, strict=True):
            card = _CARDS.get(step)
            schedule.append(
                Push(
                    data=events[step],
                    linkedid=call.linkedid,
                    card_key=f"{call.linkedid}/{card}" if card else None,
                    relay_key=relay_key(_fields(events[step])) if card else None,
                )
            )
    return schedule


def _fields(message: bytes) -> dict[str, str]:
    """An AMI message's ``Key: Value`` lines (the relay's whole parser)."""
    out: dict[str, str] = {}
    for line in message.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            out[key] = value
    return out


def relay_key(fields: dict[str, str]) -> str:
    state = fields.get("ChannelStateDesc", "")
    return f"{fields['Linkedid']}/{fields['Uniqueid']}/{fields['Event']}-{state}"


def peak_live_calls(schedule: Sequence[Push]) -> int:
    """Most calls between their first Newchannel and their last Hangup, over the schedule."""
    legs: dict[str, set[str]] = {}
    live = peak = 0
    for item in schedule:
        fields = _fields(item.data)
        call = legs.setdefault(item.linkedid, set())
        if fields["Event"] == "Newchannel":
            live += not call
            call.add(fields["Uniqueid"])
        elif fields["Event"] == "Hangup" and fields["Uniqueid"] in call:
            call.discard(fields["Uniqueid"])
            live -= not call
        peak = max(peak, live)
    return peak


def agent_bodies(calls: Sequence[BenchCall]) -> dict[str, dict[str, Any]]:
    """The ``PUT /api/agents/{id}`` body of each agent, by agent id."""
    return {
        f"bench-{call.extension}": {
            "tenant_id": TENANT,
            "name": f"Agent {call.extension}",
            "extension": call.extension,
            "device_ids": [f"PJSIP/{call.extension}"],
        }
        for call in calls
    }


def workload(ami: FakeAmi, schedule: Sequence[Push], opts: argparse.Namespace) -> Workload:
    """The schedule, pushed raw to every logged-in AMI client at ``--rate``."""

    async def send(item: Push) -> None:
        await ami.push(item.data)

    return Workload(schedule, send, opts.rate, opts.warmup)


async def wait_sessions(ami: FakeAmi, count: int) -> None:
    """Until exactly ``count`` clients are logged in to the fake AMI (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT
    while ami.logged_in != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ami.logged_in} AMI sessions, expected {count}")
        await asyncio.sleep(0.05)


# -- phase 1: ctibridge ---------------------------------------------------------------------------


def ctibridge_env(ami: FakeAmi, data_dir: str, port: int) -> dict[str, str]:
    return {
        **clean_env(),
        "CTIBRIDGE_DATA_DIR": data_dir,
        "CTIBRIDGE_WEB_PORT": str(port),
        "CTIBRIDGE_WEB_ADMIN_TOKEN": ADMIN_TOKEN,
        "CTIBRIDGE_ASTERISK_ENABLED": "true",
        "CTIBRIDGE_ASTERISK_HOST": "127.0.0.1",
        "CTIBRIDGE_ASTERISK_PORT": str(ami.port),
        "CTIBRIDGE_ASTERISK_USERNAME": USERNAME,
        "CTIBRIDGE_ASTERISK_SECRET": SECRET,
        "CTIBRIDGE_ASTERISK_TENANT_ID": TENANT,
        "CTIBRIDGE_LOG_LEVEL": "WARNING",
    }


async def measure_ctibridge(
    ami: FakeAmi,
    calls: Sequence[BenchCall],
    schedule: Sequence[Push],
    opts: argparse.Namespace,
    workdir: Path,
) -> Phase:
    port = free_port()
    log = workdir / "ctibridge.log"
    profile = ["-m", "cProfile", "-o", str(opts.profile)] if opts.profile else []
    argv = [sys.executable, *profile, "-m", "ctibridge", "serve"]
    env = ctibridge_env(ami, str(workdir / "data"), port)
    env.update(item.split("=", 1) for item in opts.set)
    async with child(argv, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30.0) as http:
            await wait_healthy(http, proc, log)
            await wait_sessions(ami, 1)
            tokens = await create_agents(http, agent_bodies(calls))
            before = await scrape(http)
            urls = [f"ws://127.0.0.1:{port}/ws?token={token}" for token in tokens]
            phase, recorder = await measure(
                workload(ami, schedule, opts), proc, urls, card_handler, lambda p: p.card_key
            )
            after = await scrape(http)
    if opts.samples:
        write_samples(opts.samples, recorder)
    return replace(phase, counters=counter_deltas(before, after))


# -- phase 2: the baseline relay ----------------------------------------------------------------


def relay_handler(recorder: Recorder) -> FrameHandler:
    """Relay sockets: ``ready`` makes the client ready; any other frame is an AMI event."""

    def on_frame(client: Client, frame: str | bytes, at: float) -> None:
        if frame == "ready":
            client.ready.set()
        else:
            text = frame if isinstance(frame, str) else frame.decode()
            recorder.received(relay_key(_fields(text.encode())), at)

    return on_frame


async def measure_relay(
    ami: FakeAmi, schedule: Sequence[Push], opts: argparse.Namespace, workdir: Path
) -> Phase:
    port = free_port()
    log = workdir / "relay.log"
    argv = [sys.executable, _SELF, "--relay", str(port), str(ami.port)]
    async with child(argv, clean_env(), log, stdout_pipe=True) as proc:
        await wait_line(proc, b"ready", log)
        await wait_sessions(ami, 1)
        linkedids = sorted({p.linkedid for p in schedule})
        urls = [f"ws://127.0.0.1:{port}/?call={linkedid}" for linkedid in linkedids]
        phase, _ = await measure(
            workload(ami, schedule, opts), proc, urls, relay_handler, lambda p: p.relay_key
        )
    return phase


_LINKEDID = b"\r\nLinkedid: "


async def relay(port: int, ami_port: int) -> None:
    """The baseline (process B'): AMI messages to the client of their Linkedid, unchanged."""
    clients: dict[str, ServerConnection] = {}

    async def on_client(ws: ServerConnection) -> None:
        assert ws.request is not None
        call = parse_qs(urlsplit(ws.request.path).query)["call"][0]
        clients[call] = ws
        try:
            await ws.send("ready")
            await ws.wait_closed()
        finally:
            clients.pop(call, None)

    reader, writer = await asyncio.open_connection("127.0.0.1", ami_port, limit=2**20)
    try:
        await reader.readuntil(b"\r\n")  # the banner
        login = [("Action", "Login"), ("Username", USERNAME), ("Secret", SECRET)]
        writer.write(event_bytes([*login, ("Events", "call")]))
        reply = await reader.readuntil(b"\r\n\r\n")
        if b"Response: Success" not in reply:
            raise RuntimeError(f"AMI login refused: {reply!r}")
        async with serve(on_client, "127.0.0.1", port, ping_interval=None):
            print("ready", flush=True)
            while True:
                message = await reader.readuntil(b"\r\n\r\n")
                start = message.find(_LINKEDID)
                if start < 0:
                    continue
                start += len(_LINKEDID)
                linkedid = message[start : message.index(b"\r\n", start)].decode()
                target = clients.get(linkedid)
                if target is not None:
                    await target.send(message.decode())
    finally:
        writer.close()


# -- main ---------------------------------------------------------------------------------------


async def bench(opts: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    now = time.time()
    calls = bench_calls(opts.agents, int(now))
    schedule = build_schedule(calls, now)
    async with FakeAmi() as ami:
        with tempfile.TemporaryDirectory(prefix="ctibridge-bench-ami-") as tmp:
            e2e = await measure_ctibridge(ami, calls, schedule, opts, Path(tmp))
            await wait_sessions(ami, 0)
            base = await measure_relay(ami, schedule, opts, Path(tmp))
    lines = report(e2e, base, len(schedule), peak_live_calls(schedule))
    if opts.detail:
        lines += detail("e2e", e2e) + detail("baseline", base)
    for line in lines:
        print(PREFIX + line, flush=True)
    if e2e.missing or base.missing or e2e.connected < len(calls):
        print("bench: some cards or frames never arrived", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=1000, help="agents = concurrent calls")
    parser.add_argument("--rate", type=float, default=1000.0, help="AMI events per second")
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
    parser.add_argument("--relay", nargs=2, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if opts.relay:
        port, ami_port = opts.relay
        asyncio.run(relay(int(port), int(ami_port)))
        return 0
    if opts.quick:
        opts.agents = 100
    if not 1 <= opts.agents <= _MAX_AGENTS or opts.rate <= 0 or not 0 <= opts.warmup < 1:
        print(
            f"bench: 1 <= --agents <= {_MAX_AGENTS}, --rate > 0 and 0 <= --warmup < 1",
            file=sys.stderr,
        )
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
