"""Normaliser throughput on one core: channel events per second, realistic interleaving.

Events come from the Kazoo captures in tests/fixtures/kazoo, copied with fresh ids into
``--calls`` calls whose events interleave as if ``--concurrent`` calls were in progress at
once. ``normaliser_*`` times ``Normaliser.apply`` alone over the mapped channel events. The
baseline, from the same run over the same frames, is the step before it: decoding the
websocket JSON and mapping it to channel events (``protocols.kazoo`` + ``callstate.kazoo``).

Prints one ``name: value unit`` per line.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from ctibridge.callstate import kazoo as mapping
from ctibridge.callstate.events import ChannelEvent
from ctibridge.callstate.normaliser import Normaliser
from ctibridge.protocols import kazoo as protocol
from ctibridge.services.runtime import tune_gc

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "kazoo"
_ID_KEYS = ("call_id", "other_leg_call_id", "bridge_a_unique_id", "bridge_b_unique_id", "msg_id")
_CCV_KEYS = ("call_interaction_id", "bridge_id")


def _rename(frame: dict[str, object], suffix: str) -> str:
    data = dict(frame["data"])  # type: ignore[call-overload]
    for key in _ID_KEYS:
        if data.get(key):
            data[key] = f"{data[key]}{suffix}"
    ccv = dict(data.get("custom_channel_vars") or {})
    for key in _CCV_KEYS:
        if ccv.get(key):
            ccv[key] = f"{ccv[key]}{suffix}"
    data["custom_channel_vars"] = ccv
    return json.dumps({**frame, "data": data})


def frames(calls: int, concurrent: int) -> list[str]:
    """Websocket frames of ``calls`` calls, ``concurrent`` of them interleaved at a time."""
    scenarios = [
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted(FIXTURES.glob("*.jsonl"))
        if "legacy" not in path.name
    ]
    out: list[str] = []
    for start in range(0, calls, concurrent):
        wave = [
            [_rename(f, f"-{n}") for f in scenarios[n % len(scenarios)]]
            for n in range(start, min(calls, start + concurrent))
        ]
        for i in range(max(len(w) for w in wave)):
            out.extend(w[i] for w in wave if i < len(w))
    return out


def _rate(events: list[ChannelEvent], repeat: int, keep: int) -> tuple[float, int]:
    """Best events/s over ``repeat`` runs of a fresh normaliser, and the changes it made."""
    rate = 0.0
    changes = 0
    for _ in range(repeat):
        gc.collect()  # the previous run's normaliser is garbage: not this run's cost
        norm = Normaliser(keep_ended=keep)
        apply = norm.apply
        started = time.perf_counter()
        changes = sum(len(apply(e)) for e in events)
        rate = max(rate, len(events) / (time.perf_counter() - started))
    return rate, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrent", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    raw = frames(args.calls, args.concurrent)

    decode_rate = 0.0
    events = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        events = [e for f in raw if (e := mapping.map_event(protocol.parse(f))) is not None]  # type: ignore[arg-type]
        decode_rate = max(decode_rate, len(raw) / (time.perf_counter() - started))

    tune_gc()  # as the server runs it (services.runtime.tune_gc)
    rate, changes = _rate(events, args.repeat, args.concurrent * 2)
    sequential = [
        e
        for f in frames(args.calls, 1)
        if (e := mapping.map_event(protocol.parse(f))) is not None  # type: ignore[arg-type]
    ]
    one_at_a_time, _ = _rate(sequential, args.repeat, 2)

    print(f"normaliser_events_per_s: {rate:.0f} events/s")
    print(f"normaliser_one_call_at_a_time_events_per_s: {one_at_a_time:.0f} events/s")
    print(f"baseline_decode_and_map_events_per_s: {decode_rate:.0f} events/s")
    print(f"events: {len(events)} count")
    print(f"call_changes: {changes} count")
    print(f"concurrent_calls: {args.concurrent} count")
    print("target_events_per_s: 200000 events/s")


if __name__ == "__main__":
    main()
