"""``ctibridge salesforce ...``: admin tools. Wired into ``ctibridge.cli`` with::

    salesforce_cli.add_parser(sub)            # while building the parser
    if args.command == "salesforce":          # in main()
        return salesforce_cli.run(args)

``ctibridge salesforce callcenter-xml [-c ctibridge.toml] [--tenant ID] [-o file.xml]``
prints the Call Center definition to import in Setup → Call Centers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ctibridge.config import load
from ctibridge.crm.salesforce.callcenter import MODES, definition_for, render
from ctibridge.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("salesforce", help="Salesforce integration tools")
    tools = parser.add_subparsers(dest="salesforce_command", required=True)
    xml = tools.add_parser(
        "callcenter-xml", help="print the Call Center definition file to import in Salesforce"
    )
    xml.add_argument("-c", "--config", help="TOML config file (conf.d/*.toml beside it too)")
    xml.add_argument("--public-url", help="https address agents reach ctibridge at")
    xml.add_argument("--tenant", default="", help="tenant id the softphone belongs to")
    xml.add_argument("--internal-name", default="ctibridge", help="unique in the org, fixed")
    xml.add_argument("--display-name", default="ctibridge softphone")
    xml.add_argument("--height", type=int, default=480, help="pixels, 240-2560")
    xml.add_argument("--width", type=int, default=340, help="pixels, 200-1920")
    xml.add_argument("--mode", choices=MODES, default="Lightning")
    xml.add_argument("--standby-url", default="", help="fallback softphone URL")
    xml.add_argument("--timeout-ms", type=int, default=10_000, help="before the standby URL")
    xml.add_argument("-o", "--output", help="write here instead of standard output")
    xml.add_argument(
        "--allow-http", action="store_true", help="accept an http URL (Lightning will not)"
    )
    return parser


def run(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    try:
        if args.salesforce_command == "callcenter-xml":
            return _callcenter_xml(args, os.environ if environ is None else environ, out)
    except ConfigError as exc:
        print(f"ctibridge: configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"ctibridge: unknown salesforce command {args.salesforce_command}", file=sys.stderr)
    return 2


def _callcenter_xml(
    args: argparse.Namespace, environ: Mapping[str, str], out: TextIO | None
) -> int:
    settings = load(args.config, environ)
    xml = render(
        definition_for(
            settings,
            tenant_id=args.tenant,
            public_url=args.public_url or "",
            internal_name=args.internal_name,
            display_name=args.display_name,
            height=args.height,
            width=args.width,
            compatibility_mode=args.mode,
            standby_url=args.standby_url,
            timeout_ms=args.timeout_ms,
            allow_http=args.allow_http,
        )
    )
    if args.output:
        Path(args.output).write_text(xml, encoding="utf-8")
    else:
        (out or sys.stdout).write(xml)
    return 0
