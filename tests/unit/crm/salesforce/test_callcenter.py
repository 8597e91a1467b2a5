"""The Call Center definition file and the ``ctibridge salesforce callcenter-xml`` command."""

from __future__ import annotations

import argparse
import dataclasses
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ctibridge.config import load
from ctibridge.crm.salesforce import cli, definition_for, render
from ctibridge.errors import ConfigError

PUBLIC = "https://cti.example.com"
SECRETS = {
    "CTIBRIDGE_WEB_ADMIN_TOKEN": "admin-token-s3cr3t",
    "CTIBRIDGE_KAZOO_API_KEY": "kazoo-key-s3cr3t",
    "CTIBRIDGE_KAZOO_ENABLED": "true",
    "CTIBRIDGE_WEB_PUBLIC_URL": PUBLIC + "/",
}


def _xml(**overrides: object) -> ET.Element:
    settings = load(None, SECRETS)
    return ET.fromstring(render(definition_for(settings, tenant_id="acme", **overrides)))  # type: ignore[arg-type]


def _items(root: ET.Element) -> dict[str, str]:
    return {
        f"{section.get('name')}/{item.get('name')}": item.text or ""
        for section in root
        for item in section
    }


def test_well_formed_lightning_definition() -> None:
    root = _xml()
    assert root.tag == "callCenter"
    items = _items(root)
    assert items["reqGeneralInfo/reqInternalName"] == "ctibridge"
    assert items["reqGeneralInfo/reqAdapterUrl"] == PUBLIC + "/softphone"
    assert items["reqGeneralInfo/reqUseApi"] == "true"
    assert items["reqGeneralInfo/reqSalesforceCompatibilityMode"] == "Lightning"
    assert items["ctibridgeSettings/serviceUrl"] == PUBLIC
    assert items["ctibridgeSettings/tenantId"] == "acme"
    assert items["ctibridgeSettings/defaultRegion"] == "GB"
    assert items["ctibridgeSettings/internalDigits"] == "5"
    assert [s.get("name") for s in root] == [
        "reqGeneralInfo",
        "reqDialingOptions",
        "ctibridgeSettings",
    ]


@pytest.mark.parametrize("standby", ["", "https://backup.example.com/softphone"])
def test_sort_orders_count_from_zero_without_gaps(standby: str) -> None:
    root = _xml(standby_url=standby)
    assert [int(s.get("sortOrder", "-1")) for s in root] == list(range(len(root)))
    for section in root:
        assert [int(i.get("sortOrder", "-1")) for i in section] == list(range(len(section)))
        for item in section:
            name = item.get("name", "")
            assert name.isalnum() and len(name) <= 40 and item.get("label")
            assert section.get("name", "").startswith("req") or not name.startswith("req")
    general = [i.get("name") for i in root[0]]
    assert ("reqStandbyUrl" in general) == ("reqTimeout" in general) == bool(standby)


def test_no_secrets_in_the_file() -> None:
    text = render(definition_for(load(None, SECRETS), tenant_id="acme"))
    for secret in ("admin-token-s3cr3t", "kazoo-key-s3cr3t"):
        assert secret not in text
    assert "token" not in text.lower() and "secret" not in text.lower()


def test_secret_looking_items_are_refused() -> None:
    base = definition_for(load(None, SECRETS))
    for name in ("apiToken", "clientSecret", "privateKey", "password"):
        leaky = dataclasses.replace(base, settings=(*base.settings, (name, name, "x")))
        with pytest.raises(ConfigError, match="secret"):
            render(leaky)


@pytest.mark.parametrize(
    "change",
    [
        {"settings": (("reqMine", "Mine", "x"),)},
        {"settings": (("has space", "x", "x"),)},
        {"settings": (("label", "x", "x"),)},
        {"internal_name": "9starts-with-digit"},
        {"internal_name": "x" * 41},
        {"compatibility_mode": "Classic"},
        {"height": 100},
        {"width": 5000},
        {"adapter_url": "/softphone"},
    ],
)
def test_rule_breaking_definitions_are_refused(change: dict[str, object]) -> None:
    base = definition_for(load(None, SECRETS))
    with pytest.raises(ConfigError):
        render(dataclasses.replace(base, **change))  # type: ignore[arg-type]


def test_http_is_refused_unless_asked_for() -> None:
    settings = load(None, {})
    with pytest.raises(ConfigError, match="not https"):
        render(definition_for(settings))
    root = ET.fromstring(render(definition_for(settings, allow_http=True)))
    assert _items(root)["reqGeneralInfo/reqAdapterUrl"] == "http://127.0.0.1:8080/softphone"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ctibridge")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_prints_the_definition() -> None:
    out = io.StringIO()
    args = _parse(["salesforce", "callcenter-xml", "--tenant", "acme", "--height", "600"])
    assert cli.run(args, environ=SECRETS, out=out) == 0
    items = _items(ET.fromstring(out.getvalue()))
    assert items["reqGeneralInfo/reqSoftphoneHeight"] == "600"
    assert items["ctibridgeSettings/tenantId"] == "acme"


def test_cli_writes_a_file_and_reads_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "ctibridge.toml"
    config.write_text('[web]\npublic_url = "https://pbx.example.org"\n')
    target = tmp_path / "callcenter.xml"
    args = _parse(["salesforce", "callcenter-xml", "-c", str(config), "-o", str(target)])
    assert cli.run(args, environ={}) == 0
    items = _items(ET.parse(target).getroot())
    assert items["reqGeneralInfo/reqAdapterUrl"] == "https://pbx.example.org/softphone"


def test_cli_reports_configuration_errors(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["salesforce", "callcenter-xml", "--public-url", "http://cti.example.com"])
    assert cli.run(args, environ={}) == 2
    assert "not https" in capsys.readouterr().err
