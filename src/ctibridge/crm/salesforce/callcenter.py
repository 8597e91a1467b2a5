"""The Call Center definition file an admin imports in Setup → Call Centers.

Format rules honoured here: ``callCenter`` → ``section`` → ``item``; ``sortOrder`` counts
from 0 without gaps inside each parent; names are alphanumeric, at most 40 characters, and
our own never start with ``req`` (reserved for Salesforce). The softphone is ``<public
URL>/softphone`` over HTTPS (Lightning will not initialise an http adapter inside an https
org). Every softphone user can read these values through ``getCallCenterSettings``, so
only non-secret settings go in: no tokens, keys or passwords, ever.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from ctibridge.config import Settings
from ctibridge.errors import ConfigError

__all__ = ["CallCenterDefinition", "definition_for", "render"]

SOFTPHONE_PATH = "/softphone"
MODES = ("Lightning", "Classic_and_Lightning")
_NAME = re.compile(r"^[A-Za-z0-9]{1,40}$")
_INTERNAL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
_RESERVED = frozenset({"label", "sortorder", "internalnamelabel", "displaynamelabel"})
_SECRET_WORDS = ("secret", "token", "password", "passwd", "key", "credential", "private")


@dataclass(frozen=True, slots=True)
class CallCenterDefinition:
    adapter_url: str
    internal_name: str = "ctibridge"
    display_name: str = "ctibridge softphone"
    height: int = 480
    width: int = 340
    compatibility_mode: str = "Lightning"
    standby_url: str = ""
    timeout_ms: int = 10_000
    settings: tuple[tuple[str, str, str], ...] = ()
    """Our items: ``(name, label, value)``, in the ``ctibridgeSettings`` section."""
    allow_http: bool = False
    """Only to look at the output: Lightning refuses an http softphone in an https org."""


def definition_for(
    settings: Settings,
    *,
    tenant_id: str = "",
    public_url: str = "",
    internal_name: str = "ctibridge",
    display_name: str = "ctibridge softphone",
    height: int = 480,
    width: int = 340,
    compatibility_mode: str = "Lightning",
    standby_url: str = "",
    timeout_ms: int = 10_000,
    allow_http: bool = False,
) -> CallCenterDefinition:
    """The definition for this ctibridge: its public URL, its non-secret settings."""
    base = (public_url or settings.public_url).rstrip("/")
    items = (
        ("serviceUrl", "ctibridge URL", base),
        ("tenantId", "Tenant", tenant_id),
        ("defaultRegion", "Default region for national numbers", settings.calls.default_region),
        ("internalDigits", "Longest internal extension", str(settings.calls.internal_digits)),
    )
    return CallCenterDefinition(
        adapter_url=base + SOFTPHONE_PATH,
        internal_name=internal_name,
        display_name=display_name,
        height=height,
        width=width,
        compatibility_mode=compatibility_mode,
        standby_url=standby_url,
        timeout_ms=timeout_ms,
        settings=items,
        allow_http=allow_http,
    )


def render(definition: CallCenterDefinition) -> str:
    """The XML, after checking every rule above (:class:`ConfigError` otherwise)."""
    _check(definition)
    root = ET.Element("callCenter")
    for index, (name, label, items) in enumerate(_sections(definition)):
        section = ET.SubElement(
            root, "section", {"sortOrder": str(index), "name": name, "label": label}
        )
        for order, (item_name, item_label, value) in enumerate(items):
            item = ET.SubElement(
                section,
                "item",
                {"sortOrder": str(order), "name": item_name, "label": item_label},
            )
            item.text = value
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


Items = tuple[tuple[str, str, str], ...]


def _sections(d: CallCenterDefinition) -> list[tuple[str, str, Items]]:
    general: list[tuple[str, str, str]] = [
        ("reqInternalName", "Internal Name", d.internal_name),
        ("reqDisplayName", "Display Name", d.display_name),
        ("reqAdapterUrl", "CTI Adapter URL", d.adapter_url),
        ("reqUseApi", "Use CTI API", "true"),
        ("reqSoftphoneHeight", "Softphone Height", str(d.height)),
        ("reqSoftphoneWidth", "Softphone Width", str(d.width)),
        ("reqSalesforceCompatibilityMode", "Salesforce Compatibility Mode", d.compatibility_mode),
    ]
    if d.standby_url:
        general += [
            ("reqStandbyUrl", "Standby URL", d.standby_url),
            ("reqTimeout", "Standby Timeout (ms)", str(d.timeout_ms)),
        ]
    dialing = (
        ("reqOutsidePrefix", "Outside Prefix", ""),
        ("reqLongDistPrefix", "Long Distance Prefix", ""),
        ("reqInternationalPrefix", "International Prefix", ""),
    )
    return [
        ("reqGeneralInfo", "General Information", tuple(general)),
        ("reqDialingOptions", "Dialing Options", dialing),
        ("ctibridgeSettings", "ctibridge Settings", d.settings),
    ]


def _check(d: CallCenterDefinition) -> None:
    if not _INTERNAL_NAME.match(d.internal_name):
        raise ConfigError("the internal name is 1-40 letters and digits, starting with a letter")
    if not 0 < len(d.display_name) <= 1000:
        raise ConfigError("the display name has 1 to 1,000 characters")
    if d.compatibility_mode not in MODES:
        raise ConfigError(f"compatibility mode must be one of {', '.join(MODES)}")
    if not 240 <= d.height <= 2560 or not 200 <= d.width <= 1920:
        raise ConfigError("Lightning softphones are 240-2560 px high and 200-1920 px wide")
    for url in filter(None, (d.adapter_url, d.standby_url)):
        _check_url(url, d.allow_http)
    for name, label, value in d.settings:
        _check_item(name, label, value)


def _check_url(url: str, allow_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"not an absolute URL: {url!r}")
    if parts.scheme == "http" and not allow_http:
        raise ConfigError(
            f"{url} is not https: Lightning will not load an http softphone "
            "(set web.public_url to the https address agents use)"
        )


def _check_item(name: str, label: str, value: str) -> None:
    if not _NAME.match(name) or name.lower().startswith("req") or name.lower() in _RESERVED:
        raise ConfigError(f"call center item name {name!r} is not allowed")
    if any(word in name.lower() for word in _SECRET_WORDS):
        raise ConfigError(f"call center item {name!r} looks like a secret; keep it server-side")
    if len(label) > 1000:
        raise ConfigError(f"the label of {name} is over 1,000 characters")
