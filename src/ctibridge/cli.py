"""The ``ctibridge`` command line: ``serve``, ``demo``, ``replay``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ctibridge import __version__
from ctibridge.config import Settings, load
from ctibridge.crm import cli as crm_cli
from ctibridge.crm.salesforce import cli as salesforce_cli
from ctibridge.errors import ConfigError, CtiError

__all__ = ["main"]

logger = logging.getLogger("ctibridge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctibridge", description="Computer-telephony integration server."
    )
    parser.add_argument("--version", action="version", version=f"ctibridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="TOML config file (conf.d/*.toml beside it too)")
        p.add_argument("--data-dir", help="where the SQLite database and admin token live")
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default 8080)")
        p.add_argument("--log-format", choices=("json", "text"))
        p.add_argument("--log-level")

    serve = sub.add_parser("serve", help="run ctibridge against the configured phone system")
    common(serve)
    demo = sub.add_parser(
        "demo", help="run ctibridge with the built-in demo phone system and live calls"
    )
    common(demo)
    demo.add_argument("--speed", type=float, default=1.0, help="traffic speed factor")
    demo.add_argument("--no-traffic", action="store_true", help="start no calls by itself")
    demo.add_argument("--seed", type=int, help="random seed for reproducible traffic")
    replay = sub.add_parser("replay", help="print the calls in a captured event stream")
    replay.add_argument("--pbx", choices=("kazoo", "asterisk", "freeswitch"), default="kazoo")
    replay.add_argument("--tenant", help="tenant id for Asterisk/FreeSWITCH (default: the pbx)")
    replay.add_argument("--internal-digits", type=int, default=5)
    replay.add_argument("file", help="capture file, '-' for standard input")
    crm_cli.add_parser(sub)
    salesforce_cli.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace, *, demo: bool) -> Settings:
    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    elif demo:
        overrides["data_dir"] = "./data/demo"
    if args.log_format:
        overrides["log_format"] = args.log_format
    elif demo and sys.stderr.isatty():
        overrides["log_format"] = "text"
    if args.log_level:
        overrides["log_level"] = args.log_level
    web: dict[str, Any] = {}
    if args.host:
        web["host"] = args.host
    if args.port is not None:
        web["port"] = args.port
    if web:
        overrides["web"] = web
    return load(args.config, os.environ, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args, sys.stdout)
        if args.command == "crm":
            return crm_cli.run(args)
        if args.command == "salesforce":
            return salesforce_cli.run(args)
        settings = _settings(args, demo=args.command == "demo")
        from ctibridge.observability import setup_logging

        setup_logging(settings.log_level, settings.log_format)
        runner = _demo(settings, args) if args.command == "demo" else _serve(settings)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(runner)
        return 0
    except ConfigError as exc:
        print(f"ctibridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except CtiError as exc:
        print(f"ctibridge: {exc}", file=sys.stderr)
        return 1


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(settings: Settings) -> None:
    from ctibridge.launcher import HttpServer
    from ctibridge.services.runtime import build_services
    from ctibridge.web.app import create_app

    services = await build_services(settings)
    http = HttpServer(create_app(settings, services), settings)
    await http.start()
    logger.info("ctibridge %s listening on %s", __version__, http.url)
    print(f"Admin console: {http.url}/admin#token={services.admin_token}", flush=True)
    try:
        await _until_stopped()
    finally:
        await http.stop()


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from ctibridge.launcher import running_demo

    async with running_demo(
        settings, traffic=not args.no_traffic, speed=args.speed, seed=args.seed
    ) as system:
        first = system.account.agents[0]
        print(
            "\nctibridge demo is running.\n"
            f"  Softphone (signed in as {first.name}, ext {first.extension}):\n"
            f"    {system.softphone_url(first.extension)}\n"
            f"  Admin view:\n    {system.admin_url()}\n"
            f"  Other agents sign in with login / password: "
            + ", ".join(f"{a.login} / {a.password}" for a in system.account.agents[1:3])
            + "\n  Demo phone system (Kazoo API): "
            + system.kazoo.url
            + "\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        await _until_stopped()


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from ctibridge.services import replay as replay_service

    def bad(line: int, exc: Exception) -> None:
        print(f"ctibridge replay: line {line} skipped: {exc}", file=sys.stderr)

    digits = args.internal_digits
    binary = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    with binary:
        if args.pbx == "kazoo":
            lines = (raw.decode("utf-8", "replace") for raw in binary)
            events = replay_service.kazoo_events(lines, internal_digits=digits, on_error=bad)
        elif args.pbx == "asterisk":
            events = replay_service.asterisk_events(
                binary, tenant_id=args.tenant or "asterisk", internal_digits=digits, on_error=bad
            )
        else:
            events = replay_service.freeswitch_events(
                binary, tenant_id=args.tenant or "freeswitch", internal_digits=digits, on_error=bad
            )
        for call in replay_service.replay(events, internal_digits=digits):
            out.write(json.dumps(replay_service.call_record(call)) + "\n")
            out.flush()
    return 0
