"""``ctibridge crm import|export|lookup|seed-demo`` end to end, on SQLite and PostgreSQL.

The commands run in-process through ``ctibridge.crm.cli.main`` (the parser ``cli.py``
wires in, and ``run``), and once as ``python -m ctibridge crm ...`` in a subprocess.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctibridge.crm.cli import main
from ctibridge.demo.directory import DEMO
from ctibridge.storage import SqlStorage
from ctibridge.storage.base import Tenant
from ctibridge.types import TenantId
from tests.unit.crm.conftest import PG_DSN, pg_execute

CONTACTS = (
    "Id,FirstName,LastName,Phone,MobilePhone,AccountName\n"
    "0031,Imran,Hussain,(0113) 496-0215,,Aire Valley\n"
    "0032,Bethany,Shaw,0113 496 0215,07700 900123,Aire Valley\n"
    "0033,Sarah,Mitchell,,+44 7700 900457,\n"
)
BAD = "Id,LastName,Phone\n1,Good,0113 496 0001\n2,Bad,N/A\n"


@dataclass
class Cli:
    """Runs ``ctibridge crm ...`` against one test database."""

    where: list[str]
    """``--data-dir DIR`` or ``-c config.toml``."""
    url: str
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    def __call__(self, command: str, *args: str, tenant: str | None = "t1") -> tuple[int, str, str]:
        argv = ["crm", command, *self.where, *args]
        if tenant:
            argv += ["--tenant", tenant]
        self.capsys.readouterr()
        code = main(argv)
        out, err = self.capsys.readouterr()
        return code, out, err

    def file(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return str(path)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CTIBRIDGE_"):
            monkeypatch.delenv(key)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    if request.param == "sqlite":
        data = tmp_path / "data"
        yield Cli(["--data-dir", str(data)], f"sqlite:///{data / 'ctibridge.db'}", tmp_path, capsys)
        return
    database = f"crm_cli_{secrets.token_hex(6)}"
    asyncio.run(pg_execute(f'CREATE DATABASE "{database}"'))
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    config = tmp_path / "ctibridge.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n')
    try:
        yield Cli(["-c", str(config)], url, tmp_path, capsys)
    finally:
        asyncio.run(pg_execute(f'DROP DATABASE "{database}" WITH (FORCE)', PG_DSN))


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_import_then_lookup_then_export(cli: Cli) -> None:
    code, out, err = cli("import", cli.file("contacts.csv", CONTACTS), "--object", "contacts")
    assert code == 0, err
    assert out == "imported 1 account, 3 contacts from 3 rows\n"
    assert "importing contacts [" in err and "100%" in err

    code, out, err = cli("lookup", "+44 113 496 0215")
    assert code == 0
    assert _lines(out) == [
        {"object": "Contact", "id": "0032", "name": "Bethany Shaw",
         "matched_field": "phone", "number": "0113 496 0215"},
        {"object": "Contact", "id": "0031", "name": "Imran Hussain",
         "matched_field": "phone", "number": "(0113) 496-0215"},
    ]  # fmt: skip
    assert "+441134960215: 2 records" in err

    target = cli.tmp / "out.csv"
    code, _, err = cli("export", "--object", "contacts", str(target))
    assert (code, err) == (0, "exported 3 contacts\n")
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["Id"], r["LastName"], r["AccountName"]) for r in rows] == [
        ("0032", "Shaw", "Aire Valley"),
        ("0031", "Hussain", "Aire Valley"),
        ("0033", "Mitchell", ""),
    ]
    code, out, _ = cli("export", "--object", "contacts")
    assert out.replace("\r\n", "\n") == target.read_text().replace("\r\n", "\n")


def test_bad_rows_exit_1_and_write_nothing(cli: Cli) -> None:
    path = cli.file("bad.csv", BAD)
    code, out, err = cli("import", path, "--object", "contacts", "--no-progress")
    assert code == 1
    assert out == "nothing imported: 1 problem (--skip-bad imports the good rows)\n"
    assert f"{path}: line 3, column Phone: 'N/A' is not a phone number" in err
    assert "importing" not in err  # no progress bar
    assert cli("lookup", "01134960001")[1] == ""

    code, out, err = cli("import", path, "--object", "contacts", "--skip-bad")
    assert code == 1
    assert out == "imported 1 contact from 2 rows; 1 problem reported above\n"
    assert [line["name"] for line in _lines(cli("lookup", "01134960001")[1])] == ["Good"]


def test_lookup_explains_numbers_that_never_pop(cli: Cli) -> None:
    code, out, err = cli("lookup", "2001")
    assert (code, out) == (0, "")
    assert "internal number" in err
    code, out, err = cli("lookup", "01134960999")
    assert (code, out) == (0, "")
    assert "+441134960999: 0 records" in err
    code, _, err = cli("lookup", "N/A")
    assert code == 2
    assert "not a phone number" in err


def test_usage_errors_exit_2(cli: Cli) -> None:
    csv_path = cli.file("c.csv", CONTACTS)
    cases = [
        ("import", csv_path, "--object", "contacts", "--map", "no-equals-sign"),
        ("import", csv_path, "--object", "contacts", "--map", "Phone=fax"),
        ("import", str(cli.tmp / "missing.csv"), "--object", "contacts"),
        ("import", csv_path, "--object", "contacts", "--region", "XX"),
    ]
    for args in cases:
        code, _, err = cli(*args)
        assert code == 2, args
        assert err.startswith("ctibridge crm: "), err


def test_the_tenant_defaults_to_the_only_one_stored(cli: Cli) -> None:
    code, _, err = cli("lookup", "01134960215", tenant=None)
    assert code == 2
    assert "--tenant" in err and "none stored yet" in err

    async def add_tenant() -> None:
        storage = SqlStorage(cli.url)
        await storage.start()
        await storage.upsert_tenant(Tenant(TenantId("only"), "Only"))
        await storage.close()

    asyncio.run(add_tenant())
    path = cli.file("c.csv", CONTACTS)
    assert cli("import", path, "--object", "contacts", tenant=None)[0] == 0
    assert len(_lines(cli("lookup", "01134960215", tenant="only")[1])) == 2
    assert cli("lookup", "01134960215")[1] == ""  # tenant t1 has nothing


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[storage]\nurl = 'mysql://nope/db'\n")
    assert main(["crm", "lookup", "-c", str(config), "0113 496 0215", "--tenant", "t"]) == 2
    assert "unsupported database" in capsys.readouterr().err
    assert main(["crm", "lookup", "-c", str(tmp_path / "none.toml"), "1"]) == 2


def test_seed_demo_makes_demo_callers_pop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(tmp_path), "--tenant", DEMO.account_id]
    assert main(["crm", "seed-demo", *where]) == 0
    assert capsys.readouterr().out.startswith("loaded 1513 accounts, 6042 contacts, 2501 leads")
    caller = DEMO.callers[1]
    assert main(["crm", "lookup", *where, caller.number]) == 0
    (line,) = _lines(capsys.readouterr().out)
    assert line["name"] == caller.name


def test_runs_as_a_program(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "c.csv"
    source.write_text(CONTACTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTIBRIDGE_")}

    def program(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ctibridge", "crm", *args]
        argv += ["--data-dir", str(data), "--tenant", "t1"]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

    imported = program("import", str(source), "--object", "contacts")
    assert imported.returncode == 0, imported.stderr
    looked_up = program("lookup", "07700900457")
    assert looked_up.returncode == 0
    assert json.loads(looked_up.stdout)["name"] == "Sarah Mitchell"
    source.write_text(BAD)
    assert program("import", str(source), "--object", "contacts").returncode == 1
