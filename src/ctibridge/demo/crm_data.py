"""The demo tenant's CRM: about 10,000 accounts, contacts and leads, the same on every run.

Harbourside Lettings' book: companies they deal with (with their staff as contacts),
private landlords and tenants, and sales leads. Every caller of the demo phone system
(``DEMO.callers``) is in it, so demo calls pop a record, and a few numbers belong to
several records (so the agent gets the chooser):

- Peter Lawson's direct line is also his firm's only number (a contact and an account);
- Sarah Mitchell is a contact and still an old web-enquiry lead (a contact and a lead);
- Margaret and Robert Ellis share a landline (two contacts);
- Aire Valley Estates' switchboard is on the account, Imran Hussain and Bethany Shaw
  (an account and two contacts).

Numbers come from Ofcom's drama ranges (never given to real subscribers) and are spelled the
way people type them: ``0113 496 0215``, ``+44 (0)113 496 0215``, ``(0113) 496-0215``,
``00441134960215``... Websites and emails use ``.example`` domains.

This module holds data only (it must not import the CRM); :func:`seed_demo_crm` takes any
object with the ``upsert_many`` method of ``BuiltinCrm``.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from ctibridge.demo.directory import DEMO, Caller

__all__ = ["SHARED_NUMBERS", "CrmLoader", "DemoCrmData", "demo_crm_data", "seed_demo_crm"]

Row = dict[str, str | None]

_SEED = 20_26_01
ACCOUNTS, CONTACTS, LEADS = 1500, 6000, 2500
"""Generated records, besides the callers' own (about 45 more)."""

SHARED_NUMBERS = ("+441632960274", "+447700900123", "+441632960018", "+441134960215")
"""Numbers that pop more than one record."""


@dataclass(frozen=True, slots=True)
class _Range:
    """A drama range: ``area`` + ``prefix`` + three more digits, local part grouped."""

    area: str
    prefix: str
    groups: tuple[int, ...]
    """Lengths of the local number's groups, e.g. (3, 4) for ``496 0215``."""
    city: str

    def local(self, suffix: int) -> str:
        return f"{self.prefix}{suffix:03d}"


_GEOGRAPHIC = (
    _Range("0113", "4960", (3, 4), "Leeds"),
    _Range("0114", "4960", (3, 4), "Sheffield"),
    _Range("0115", "4960", (3, 4), "Nottingham"),
    _Range("0116", "4960", (3, 4), "Leicester"),
    _Range("0117", "4960", (3, 4), "Bristol"),
    _Range("0118", "4960", (3, 4), "Reading"),
    _Range("0121", "4960", (3, 4), "Birmingham"),
    _Range("0131", "4960", (3, 4), "Edinburgh"),
    _Range("0141", "4960", (3, 4), "Glasgow"),
    _Range("0151", "4960", (3, 4), "Liverpool"),
    _Range("0161", "4960", (3, 4), "Manchester"),
    _Range("0191", "4980", (3, 4), "Newcastle"),
    _Range("020", "79460", (4, 4), "London"),
    _Range("028", "96496", (4, 4), "Belfast"),
    _Range("029", "20180", (4, 4), "Cardiff"),
    _Range("01632", "960", (6,), "Harbourside"),
)
_MOBILE = _Range("07700", "900", (6,), "")


def _split(local: str, groups: tuple[int, ...]) -> list[str]:
    out, start = [], 0
    for size in groups:
        out.append(local[start : start + size])
        start += size
    return out


_SPELLINGS = (
    lambda area, parts: f"{area} {' '.join(parts)}",
    lambda area, parts: f"{area} {' '.join(parts)}",
    lambda area, parts: f"{area}{''.join(parts)}",
    lambda area, parts: f"+44 {area[1:]} {' '.join(parts)}",
    lambda area, parts: f"+44{area[1:]}{''.join(parts)}",
    lambda area, parts: f"({area}) {' '.join(parts)}",
    lambda area, parts: f"{area}-{'-'.join(parts)}",
    lambda area, parts: f"+44 (0){area[1:]} {' '.join(parts)}",
    lambda area, parts: f"0044 {area[1:]} {' '.join(parts)}",
)
"""Ways people write a UK number (the plain national form twice as often)."""


def _spell(rng: random.Random, area: str, local: str, groups: tuple[int, ...]) -> str:
    return rng.choice(_SPELLINGS)(area, _split(local, groups))


def _e164_parts(e164: str) -> tuple[_Range, str] | None:
    """The drama range and local digits of a UK number we generate."""
    national = "0" + e164[3:]
    for rng_ in (*_GEOGRAPHIC, _MOBILE):
        if national.startswith(rng_.area + rng_.prefix):
            return rng_, national[len(rng_.area) :]
    return None


def spell_e164(rng: random.Random, e164: str) -> str:
    """A typed spelling of one of our numbers (foreign ones in ``00`` or ``+`` form)."""
    parts = _e164_parts(e164) if e164.startswith("+44") else None
    if parts is None:
        return rng.choice([e164, "00" + e164[1:]])
    area_range, local = parts
    return _spell(rng, area_range.area, local, area_range.groups)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "Oliver Amelia Harry Isla Jack Ava George Mia Noah Ivy Leo Freya Arthur Lily Oscar "
    "Grace Charlie Evie Thomas Ella Jacob Poppy Alfie Sophia Henry Rosie William Millie "
    "Joshua Ruby Muhammad Aisha Yusuf Maryam Arjun Anaya Kwame Ama Tomasz Zofia Ciaran "
    "Siobhan Ewan Morag Gareth Ffion Dylan Cerys Marcus Priya Samuel Leah Daniel Nia "
    "Elliot Imogen Rory Keira"
)
_LAST = _words(
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Wright Robinson Wood "
    "Thompson Evans Walker White Roberts Green Hall Thomas Clarke Jackson Harris Lewis "
    "Martin Cooper King Baker Harrison Morgan Allen James Scott Phillips Watson Davis "
    "Parker Bennett Price Griffiths Young Hill Kaur Singh Khan Ali Ahmed Begum Chen Nowak "
    "Kowalska Murphy Kelly Byrne Campbell Stewart MacDonald Fraser Reid Lloyd Hughes "
    "Jenkins Rees Okoye Mensah Adeyemi Fernandes Costa Rossi Novak Horvat Nguyen Tran Osei "
    "Boateng"
)
_PLACES = _words(
    "Harbourside Quayside Riverside Northgate Westbrook Eastfield Southmead Kingsway "
    "Abbeydale Ashford Beacon Bridgewater Castlegate Cathedral Chapelfield Clifton Crown "
    "Dockside Fairfield Foxhill Granary Greenbank Hartley Highfield Holloway Lakeside "
    "Marston Meadowbank Millbrook Moorside Newhaven Oakwood Parkside Pennine Redcliffe "
    "Seaview Stonegate Summerhill Thornbury Victoria Waterfront Wharfside Willowbank"
)
_TRADES = (
    ("Lettings", "Real estate"), ("Estates", "Real estate"), ("Property Management", "Real estate"),
    ("Surveyors", "Construction"), ("Builders", "Construction"), ("Plumbing", "Construction"),
    ("Electrical", "Construction"), ("Roofing", "Construction"), ("Glazing", "Construction"),
    ("Cleaning Services", "Services"), ("Removals", "Transport"), ("Storage", "Transport"),
    ("Solicitors", "Legal"), ("Conveyancing", "Legal"), ("Accountants", "Finance"),
    ("Mortgages", "Finance"), ("Insurance", "Insurance"), ("Housing Association", "Housing"),
    ("Student Living", "Housing"), ("Interiors", "Retail"), ("Furniture", "Retail"),
    ("Locksmiths", "Services"), ("Gardening", "Services"), ("Pest Control", "Services"),
)  # fmt: skip
_SUFFIXES = ("Ltd", "Ltd", "Limited", "& Co", "Group", "LLP", "")
_TITLES = (
    "Director", "Office Manager", "Property Manager", "Accounts Payable", "Operations Manager",
    "Landlord", "Facilities Manager", "Partner", "Surveyor", "Lettings Negotiator",
    "Maintenance Coordinator", "Head of Procurement", "Tenant Liaison", "Finance Director",
)  # fmt: skip
_LEAD_STATUSES = ("Open", "Open", "Working", "Nurturing", "Qualified", "Unqualified")


def _record_id(kind: str, key: str) -> str:
    return hashlib.sha256(f"ctibridge-demo-crm/{kind}/{key}".encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower().replace("&", "and"))


def _email(first: str, last: str, domain: str) -> str:
    return f"{_slug(first)}.{_slug(last)}@{domain}"


class _Numbers:
    """Unused drama-range numbers, handed out in a shuffled, repeatable order."""

    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self._rng = rng
        self._geo = self._pool(_GEOGRAPHIC, taken)
        self._mobile = self._pool((_MOBILE,), taken)

    def _pool(self, ranges: Sequence[_Range], taken: set[str]) -> list[tuple[_Range, str]]:
        pool = [
            (r, r.local(n))
            for r in ranges
            for n in range(1000)
            if "+44" + r.area[1:] + r.local(n) not in taken
        ]
        self._rng.shuffle(pool)
        return pool

    def landline(self) -> tuple[str, str]:
        """A spelled landline number and its town."""
        area_range, local = self._geo.pop()
        return _spell(self._rng, area_range.area, local, area_range.groups), area_range.city

    def mobile(self) -> str | None:
        if not self._mobile:
            return None
        area_range, local = self._mobile.pop()
        return _spell(self._rng, area_range.area, local, area_range.groups)


@dataclass(frozen=True, slots=True)
class DemoCrmData:
    accounts: tuple[Row, ...]
    contacts: tuple[Row, ...]
    leads: tuple[Row, ...]
    """Rows by our field names, each with its ``id``."""

    def __len__(self) -> int:
        return len(self.accounts) + len(self.contacts) + len(self.leads)


class _Builder:
    def __init__(self) -> None:
        self.rng = random.Random(_SEED)
        taken = {c.number for c in DEMO.callers}
        self.numbers = _Numbers(self.rng, taken)
        self.accounts: list[Row] = []
        self.contacts: list[Row] = []
        self.leads: list[Row] = []
        self._names: set[str] = set()

    def company_name(self) -> tuple[str, str]:
        while True:
            trade, industry = self.rng.choice(_TRADES)
            name = f"{self.rng.choice(_PLACES)} {trade} {self.rng.choice(_SUFFIXES)}".strip()
            if name not in self._names:
                self._names.add(name)
                return name, industry

    def account(self, key: str, name: str, industry: str, phone: str | None, city: str) -> Row:
        row: Row = {
            "id": _record_id("account", key),
            "name": name,
            "phone": phone,
            "website": f"https://www.{_slug(name)}.example",
            "industry": industry,
            "city": city or None,
        }
        self.accounts.append(row)
        return row

    def person(self, kind: str, key: str, first: str, last: str, **fields: str | None) -> Row:
        row: Row = {
            "id": _record_id(kind, key),
            "first_name": first,
            "last_name": last,
            **fields,
        }
        (self.contacts if kind == "contact" else self.leads).append(row)
        return row

    def random_person(self) -> tuple[str, str]:
        return self.rng.choice(_FIRST), self.rng.choice(_LAST)


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last


def _add_callers(b: _Builder) -> None:
    """Every demo caller, and the shared numbers (see the module docstring)."""
    for caller in DEMO.callers:
        _add_caller(b, caller)
    lawson = next(c for c in DEMO.callers if c.number == SHARED_NUMBERS[0])
    b.account("lawson", lawson.company, "Legal", spell_e164(b.rng, lawson.number), "Harbourside")
    mitchell = next(c for c in DEMO.callers if c.number == SHARED_NUMBERS[1])
    b.person("lead", "mitchell", *_split_name(mitchell.name), company=None,
             mobile_phone=spell_e164(b.rng, mitchell.number), status="Nurturing",
             email="sarah.mitchell@mail.example")  # fmt: skip
    ellis = spell_e164(b.rng, SHARED_NUMBERS[2])
    b.person("contact", "robert-ellis", "Robert", "Ellis", title="Landlord", phone=ellis,
             email="robert.ellis@mail.example")  # fmt: skip
    aire = next(c for c in DEMO.callers if c.number == SHARED_NUMBERS[3])
    account = b.account(
        "aire", aire.company, "Real estate", spell_e164(b.rng, aire.number), "Leeds"
    )
    b.person("contact", "bethany-shaw", "Bethany", "Shaw", title="Office Manager",
             account_id=account["id"], phone=spell_e164(b.rng, aire.number),
             email="bethany.shaw@airevalleyestates.example")  # fmt: skip


def _add_caller(b: _Builder, caller: Caller) -> None:
    first, last = _split_name(caller.name)
    number = spell_e164(b.rng, caller.number)
    mobile = caller.number.startswith("+447")
    phones = {"mobile_phone": number} if mobile else {"phone": number}
    if caller.company and caller.number not in (SHARED_NUMBERS[0], SHARED_NUMBERS[3]):
        account = b.account(caller.number, caller.company, "Services", None, "")
        account_id: str | None = account["id"]
    elif caller.company:
        account_id = _record_id("account", "lawson" if "Lawson" in caller.company else "aire")
    else:
        account_id = None
    domain = f"{_slug(caller.company)}.example" if caller.company else "mail.example"
    b.person("contact", caller.number, first, last, account_id=account_id,
             email=_email(first, last, domain), title="Landlord" if not caller.company else None,
             **phones)  # fmt: skip


def _add_accounts(b: _Builder) -> list[Row]:
    added = []
    for i in range(ACCOUNTS):
        name, industry = b.company_name()
        phone, city = b.numbers.landline()
        added.append(b.account(f"a{i}", name, industry, phone, city))
    return added


def _add_contacts(b: _Builder, accounts: Sequence[Row]) -> None:
    for i in range(CONTACTS):
        account = accounts[i % len(accounts)] if i % 10 else b.rng.choice(accounts)
        first, last = b.random_person()
        domain = str(account["website"]).removeprefix("https://www.")
        fields: dict[str, str | None] = {
            "account_id": account["id"],
            "title": b.rng.choice(_TITLES),
            "email": _email(first, last, domain),
        }
        if b.rng.random() < 0.7:
            fields["phone"] = b.numbers.landline()[0]
        mobile = b.numbers.mobile() if b.rng.random() < 0.2 or "phone" not in fields else None
        if mobile:
            fields["mobile_phone"] = mobile
        elif "phone" not in fields:
            fields["phone"] = b.numbers.landline()[0]
        if b.rng.random() < 0.05:
            fields["other_phone"] = b.numbers.landline()[0]
        b.person("contact", f"c{i}", first, last, **fields)


def _add_leads(b: _Builder) -> None:
    for i in range(LEADS):
        first, last = b.random_person()
        company, _ = b.company_name() if b.rng.random() < 0.6 else (None, None)
        domain = f"{_slug(company)}.example" if company else "mail.example"
        b.person("lead", f"l{i}", first, last, company=company,
                 email=_email(first, last, domain), status=b.rng.choice(_LEAD_STATUSES),
                 phone=b.numbers.landline()[0])  # fmt: skip


@lru_cache(maxsize=1)
def demo_crm_data() -> DemoCrmData:
    """The data set (built once per process, about 50 ms)."""
    b = _Builder()
    _add_callers(b)
    accounts = _add_accounts(b)
    _add_contacts(b, accounts)
    _add_leads(b)
    return DemoCrmData(tuple(b.accounts), tuple(b.contacts), tuple(b.leads))


class CrmLoader(Protocol):
    """What seeding needs: ``BuiltinCrm.upsert_many``."""

    async def upsert_many(
        self, tenant_id: str, object: str, rows: Sequence[Mapping[str, Any]]
    ) -> int: ...


async def seed_demo_crm(crm: CrmLoader, tenant_id: str = DEMO.account_id) -> dict[str, int]:
    """Load the data set into the tenant's built-in CRM. Records are written by fixed ids, so
    running it again leaves the same records (their call activity is kept)."""
    data = demo_crm_data()
    return {
        "accounts": await crm.upsert_many(tenant_id, "Account", data.accounts),
        "contacts": await crm.upsert_many(tenant_id, "Contact", data.contacts),
        "leads": await crm.upsert_many(tenant_id, "Lead", data.leads),
    }
