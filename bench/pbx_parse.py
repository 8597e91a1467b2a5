"""AMI and ESL parse throughput on one core, over the genuine captures, against PyPI clients.

The streams are the captures in tests/fixtures/ami and tests/fixtures/esl: every event
message of every capture, byte for byte, repeated ``--repeat`` times, fed in 64 KiB chunks
(what the connectors read from a socket at a time). Each parser gets the same bytes:

- ``ctibridge_ami_parse``: ``AmiProtocol.receive_data`` + ``events_received`` (framing
  and header split into ``AmiMessage``).
- ``panoramisk_ami_parse``: panoramisk's ``AMIProtocol.data_received`` up to the
  ``Message`` objects it dispatches (its own framing and ``Message.from_line``).
- ``ctibridge_esl_parse``: ``EslProtocol.receive_data`` + ``EslMessage.event()`` on every
  frame (framing, then the URL-decoded ``text/event-plain`` headers).
- ``genesis_esl_parse``: genesis's ``ESLReaderFSM`` (the reader state machine its
  ``Protocol`` drives from ``readuntil(b"\\n\\n")`` / ``readexactly``), driven the same way
  from a byte buffer, up to its decoded ``ESLEvent`` dicts.
- ``*_connector_path``: what the connectors really do per message: parse, skip by event
  name what the mapper does not read, map the rest to channel events.

genesis's package ``__init__`` pulls in OpenTelemetry, FastAPI, Redis...; only its two
parser modules are loaded here (``pip install --no-deps genesis``), with its logger
replaced by a no-op. greenswitch is not measured: it is gevent-based and parses only while
reading a live gevent socket, so it cannot be fed bytes. Rates are the best of ``--runs``.

Prints one ``name: value unit`` per line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ctibridge.callstate.asterisk import EVENT_NAMES as AMI_NAMES
from ctibridge.callstate.asterisk import AsteriskMapper
from ctibridge.callstate.freeswitch import EVENT_NAMES as ESL_NAMES
from ctibridge.callstate.freeswitch import FreeswitchMapper
from ctibridge.protocols.ami import AmiProtocol
from ctibridge.protocols.esl import EslProtocol

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 65536


# -- the streams --------------------------------------------------------------------------------


def ami_events() -> list[bytes]:
    """Every event message of every AMI capture (each with its blank line)."""
    out = []
    for path in sorted((FIXTURES / "ami").glob("*.ami")):
        _banner, _sep, rest = path.read_bytes().partition(b"\r\n")
        out += [m + b"\r\n\r\n" for m in rest.split(b"\r\n\r\n") if m.startswith(b"Event:")]
    return out


def esl_events() -> list[bytes]:
    """Every ``text/event-plain`` frame of every ESL capture, byte for byte."""
    out = []
    for path in sorted((FIXTURES / "esl").glob("*.esl")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            end = data.index(b"\n\n", at) + 2
            head = data[at:end].decode()
            length = next(
                (int(h.split(":")[1]) for h in head.splitlines() if h.startswith("Content-Length")),
                0,
            )
            if "text/event-plain" in head:
                out.append(data[at : end + length])
            at = end + length
    return out


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def best_rate(
    parse: Callable[[list[bytes]], int], pieces: list[bytes], runs: int
) -> tuple[float, int]:
    """(messages per second, messages) of the fastest of ``runs`` passes."""
    rate, count = 0.0, 0
    for _ in range(runs):
        started = time.perf_counter()
        count = parse(pieces)
        rate = max(rate, count / (time.perf_counter() - started))
    return rate, count


# -- AMI ----------------------------------------------------------------------------------------


def ctibridge_ami(pieces: list[bytes]) -> int:
    proto = AmiProtocol()
    count = 0
    for piece in pieces:
        proto.receive_data(piece)
        count += len(proto.events_received())
    return count


def ctibridge_ami_connector_path(pieces: list[bytes]) -> int:
    proto, mapper = AmiProtocol(), AsteriskMapper("bench")
    count = 0
    for piece in pieces:
        proto.receive_data(piece)
        for message in proto.events_received():
            count += 1
            if message.name in AMI_NAMES:
                mapper.feed(message)
    return count


def panoramisk_ami() -> Callable[[list[bytes]], int] | str:
    try:
        from panoramisk.ami_protocol import AMIProtocol
    except ImportError:
        return "not installed (pip install panoramisk)"

    class _Factory:
        count = 0

        def dispatch(self, message: Any) -> None:
            self.count += 1

    class _Transport:
        def write(self, data: bytes) -> None:
            pass

    def parse(pieces: list[bytes]) -> int:
        proto = AMIProtocol()
        proto.connection_made(_Transport())
        proto.factory = factory = _Factory()
        for piece in pieces:
            proto.data_received(piece)
        return factory.count

    return parse


# -- ESL ----------------------------------------------------------------------------------------


def ctibridge_esl(pieces: list[bytes]) -> int:
    proto = EslProtocol()
    count = 0
    for piece in pieces:
        proto.receive_data(piece)
        for frame in proto.events_received():
            frame.event()
            count += 1
    return count


def ctibridge_esl_connector_path(pieces: list[bytes]) -> int:
    proto, mapper = EslProtocol(), FreeswitchMapper("bench")
    count = 0
    for piece in pieces:
        proto.receive_data(piece)
        for frame in proto.events_received():
            count += 1
            if frame.event_name in ESL_NAMES:
                mapper.feed(frame.event())
    return count


def _genesis_reader() -> type[Any] | str:
    """genesis's reader FSM, without running its package ``__init__`` (see the docstring)."""
    spec = importlib.util.find_spec("genesis")
    if spec is None or not spec.submodule_search_locations:
        return "not installed (pip install --no-deps genesis)"
    root = Path(next(iter(spec.submodule_search_locations)))
    quiet = types.SimpleNamespace(**{n: _noop for n in ("trace", "debug", "info", "warning")})
    stubs = {
        "genesis": [str(root)],
        "genesis.protocol": [str(root / "protocol")],
        "genesis.observability": None,
    }
    for name, path in stubs.items():
        module = types.ModuleType(name)
        if path is not None:
            module.__path__ = path
        sys.modules[name] = module
    sys.modules["genesis.observability"].logger = quiet  # type: ignore[attr-defined]
    reader: type[Any] = importlib.import_module("genesis.protocol.reader_fsm").ESLReaderFSM
    return reader


def _noop(*args: object, **kwargs: object) -> None:
    return None


def genesis_esl() -> Callable[[list[bytes]], int] | str:
    reader_class = _genesis_reader()
    if isinstance(reader_class, str):
        return reader_class

    def parse(pieces: list[bytes]) -> int:
        fsm, buffer, count, need = reader_class(), bytearray(), 0, 0
        for piece in pieces:
            buffer += piece
            while True:
                if need:
                    if len(buffer) < need:
                        break
                    count += len(fsm.process_body(bytes(buffer[:need])))
                    del buffer[:need]
                    need = 0
                end = buffer.find(b"\n\n")
                if end < 0:
                    break
                events, need = fsm.process_headers(buffer[: end + 2].decode("utf-8"))
                del buffer[: end + 2]
                count += len(events)
        return count

    return parse


# -- main ---------------------------------------------------------------------------------------


def _report(
    name: str,
    parse: Callable[[list[bytes]], int] | str,
    pieces: list[bytes],
    runs: int,
    expected: int,
) -> None:
    if isinstance(parse, str):
        print(f"{name}: skipped ({parse})")
        return
    rate, count = best_rate(parse, pieces, runs)
    if count != expected:
        raise SystemExit(f"{name} read {count} messages, not {expected}")
    print(f"{name}: {rate:.0f} events/s")


def _streams(repeat: int) -> Iterator[tuple[str, list[bytes], int]]:
    ami = ami_events()
    yield "ami", chunks(BANNER + b"".join(ami) * repeat), len(ami) * repeat
    esl = esl_events()
    yield "esl", chunks(b"".join(esl) * repeat), len(esl) * repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10, help="copies of the captures")
    parser.add_argument("--runs", type=int, default=3, help="passes; the best one counts")
    args = parser.parse_args()
    (_, ami, ami_count), (_, esl, esl_count) = _streams(args.repeat)
    print(f"ami_stream: {sum(map(len, ami)) / 1e6:.1f} MB")
    print(f"ami_messages: {ami_count} events")
    _report("ctibridge_ami_parse", ctibridge_ami, ami, args.runs, ami_count)
    _report("panoramisk_ami_parse", panoramisk_ami(), ami, args.runs, ami_count)
    _report("ctibridge_ami_connector_path", ctibridge_ami_connector_path, ami, args.runs, ami_count)
    print(f"esl_stream: {sum(map(len, esl)) / 1e6:.1f} MB")
    print(f"esl_messages: {esl_count} events")
    _report("ctibridge_esl_parse", ctibridge_esl, esl, args.runs, esl_count)
    _report("genesis_esl_parse", genesis_esl(), esl, args.runs, esl_count)
    _report("ctibridge_esl_connector_path", ctibridge_esl_connector_path, esl, args.runs, esl_count)
    print("greenswitch_esl_parse: skipped (gevent-based: parses only from a live gevent socket)")


if __name__ == "__main__":
    main()
