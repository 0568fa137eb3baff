"""Phone numbers as lead lists write them, normalised to E.164 (US default region)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import phonenumbers

_SCIENTIFIC = re.compile(r"^\s*([+-]?)(\d+)(?:\.(\d*))?[eE]\+?(\d+)\s*$")
_TRAILING_ZERO_DECIMAL = re.compile(r"^\s*\+?\d+\.0+\s*$")
_HAS_LETTERS = re.compile(r"[A-Za-z]")
# "212-555-0142 x123", "ext. 12": an office extension, which a text cannot use; the line can.
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension)\s*\d{1,6}\s*$", re.IGNORECASE)
# Letters a phone keypad or an extension marker may legitimately contain are still rejected:
# a lead list with "555-CALL-NOW" is a data-entry error, not a vanity number to dial.

NANP_COUNTRY_CODE = 1


class PhoneRejected(ValueError):
    """The text cannot be turned into a textable number; `reason` says why in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Phone:
    e164: str
    national: str
    region: str | None


def _expand_scientific(text: str) -> str | None:
    """Excel writes long numbers as 2.125550142E+09; return the digits, or None if not that form.

    Raises PhoneRejected when Excel already cut digits (fewer significant digits than the
    number it stands for), because the real number can no longer be known.
    """
    match = _SCIENTIFIC.match(text)
    if not match:
        return None
    _, whole, fraction, _ = match.groups()
    significant = (whole + (fraction or "")).lstrip("0")
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:  # pragma: no cover - the regex already vetted the form
        raise PhoneRejected("not a phone number") from exc
    if value != value.to_integral_value():
        raise PhoneRejected("scientific notation with a fractional value")
    digits = str(int(value))
    if len(significant) < len(digits):
        # 2.12555E+09 stands for 2125550000, but the file's real number could be any of
        # 21255500xx..: the digits are gone, and guessing would text a stranger.
        raise PhoneRejected("digits lost to Excel scientific notation")
    return digits


def normalise_phone(raw: object, default_region: str = "US") -> Phone:
    """Turn a phone as integrators and lead lists send it into E.164, or raise PhoneRejected."""
    if raw is None:
        raise PhoneRejected("is required")
    if isinstance(raw, bool):
        raise PhoneRejected("must be a string")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float):
        if raw != int(raw):
            raise PhoneRejected("not a phone number")
        text = str(int(raw))
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise PhoneRejected("must be a string")
    if not text:
        raise PhoneRejected("is blank")
    expanded = _expand_scientific(text)
    if expanded is not None:
        text = expanded
    elif _TRAILING_ZERO_DECIMAL.match(text):
        text = text.split(".", 1)[0]
    text = _EXTENSION.sub("", text)
    if _HAS_LETTERS.search(text):
        raise PhoneRejected("contains letters")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneRejected("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneRejected("not a valid phone number")
    if parsed.country_code != NANP_COUNTRY_CODE:
        raise PhoneRejected("only US and Canadian numbers can be texted")
    return Phone(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        region=phonenumbers.region_code_for_number(parsed),
    )


def mask_phone(e164: str | None) -> str:
    """+12125550142 -> +1212***0142: enough to correlate log lines, not enough to identify."""
    if not e164:
        return ""
    if len(e164) <= 8:
        return "***"
    return f"{e164[:5]}***{e164[-4:]}"
