"""Refresh tokens at rest: AES-GCM with a 0600 key file; tampering is detected."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ctibridge.crm.salesforce import SalesforceOrg, TokenBox, org_from_settings, org_to_settings
from ctibridge.crm.salesforce.crypto import KEY_FILE
from ctibridge.errors import ConfigError, CrmAuthError

TOKEN = "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrDHqzSVbBxLbBXKhsw1cFFoeb"


def test_round_trip(tmp_path: Path) -> None:
    box = TokenBox.from_data_dir(tmp_path)
    sealed = box.encrypt(TOKEN, context="t1:refresh_token")
    assert TOKEN not in sealed and sealed.startswith("v1.")
    assert box.encrypt(TOKEN, context="t1:refresh_token") != sealed  # a fresh nonce each time
    assert box.decrypt(sealed, context="t1:refresh_token") == TOKEN
    assert TokenBox.from_data_dir(tmp_path).decrypt(sealed, context="t1:refresh_token") == TOKEN


def test_key_file_is_private_and_made_once(tmp_path: Path) -> None:
    TokenBox.from_data_dir(tmp_path / "data")
    key = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    TokenBox.from_data_dir(tmp_path / "data")
    assert key.read_bytes() == first and len(first) == 32
    assert [p.name for p in key.parent.iterdir()] == [KEY_FILE]  # no temporary left behind


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    TokenBox.from_data_dir(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        TokenBox.from_data_dir(tmp_path)


def test_tampering_is_detected(tmp_path: Path) -> None:
    box = TokenBox.from_data_dir(tmp_path)
    sealed = box.encrypt(TOKEN, context="t1:refresh_token")
    flipped = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    for bad in (flipped, sealed[:-1], "v1.", "v2." + sealed[3:], "v1.!!!"):
        with pytest.raises(CrmAuthError, match=r"cannot be opened|unknown format"):
            box.decrypt(bad, context="t1:refresh_token")


def test_a_token_moved_to_another_tenant_or_key_does_not_open(tmp_path: Path) -> None:
    box = TokenBox.from_data_dir(tmp_path / "a")
    sealed = box.encrypt(TOKEN, context="t1:refresh_token")
    with pytest.raises(CrmAuthError):
        box.decrypt(sealed, context="t2:refresh_token")
    with pytest.raises(CrmAuthError):
        TokenBox.from_data_dir(tmp_path / "b").decrypt(sealed, context="t1:refresh_token")
    assert "redacted" in repr(box)


def test_tenant_settings_hold_secrets_sealed(tmp_path: Path) -> None:
    box = TokenBox.from_data_dir(tmp_path)
    org = SalesforceOrg(
        client_id="cid",
        client_secret="app-secret",
        refresh_token=TOKEN,
        default_owner_id="005000000000001AAA",
        region="US",
    )
    stored = org_to_settings(org, box, tenant_id="t1")
    text = json.dumps(stored)
    assert TOKEN not in text and "app-secret" not in text
    assert org_from_settings({"salesforce": stored}, box, tenant_id="t1") == org
    with pytest.raises(CrmAuthError):
        org_from_settings({"salesforce": stored}, box, tenant_id="t2")
    assert org_from_settings({}, box, tenant_id="t1") is None
    assert TOKEN not in repr(org) and "app-secret" not in repr(org)


def test_org_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        SalesforceOrg(client_id="")
    with pytest.raises(ConfigError):
        SalesforceOrg(client_id="cid", api_version="v62")
    with pytest.raises(ConfigError):
        SalesforceOrg(client_id="cid", username="int@example.com")
