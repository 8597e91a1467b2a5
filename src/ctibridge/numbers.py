"""Phone numbers: one normal form (E.164) for lookups, and the spellings CRMs store.

Pure functions over the ``phonenumbers`` library (Google's libphonenumber metadata).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

__all__ = ["display_forms", "is_internal", "to_e164"]


def is_internal(raw: str | None, internal_digits: int) -> bool:
    """Seed 002: a number of at most ``internal_digits`` digits is an extension."""
    if not raw:
        return False
    digits = sum(ch.isdigit() for ch in raw.partition("@")[0])
    return 0 < digits <= internal_digits


@lru_cache(maxsize=65536)
def to_e164(raw: str | None, region: str = "GB", internal_digits: int = 5) -> str | None:
    """E.164 for any usual spelling (national, ``+``, ``00``, spaces, dashes, parentheses,
    an extension suffix); None for extensions, garbage and impossible numbers.

    "Possible" rather than "valid" numbers are accepted, so reserved drama ranges and
    numbers newer than the metadata still match.
    """
    if not raw or is_internal(raw, internal_digits):
        return None
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper())
    except NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


@lru_cache(maxsize=65536)
def display_forms(e164: str) -> tuple[str, ...]:
    """The spellings a CRM may hold for one number: E.164, international, national, and
    their digits-only forms (for searches in stores that kept what people typed)."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return (e164,)
    forms = [
        e164,
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
    ]
    forms += ["".join(ch for ch in f if ch.isdigit() or ch == "+") for f in forms[1:]]
    out: list[str] = []
    for form in forms:
        if form and form not in out:
            out.append(form)
    return tuple(out)
