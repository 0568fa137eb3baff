"""Message templates: `{first_name}`, `{call_number}` and any custom field of the lead."""

from __future__ import annotations

import re
from collections.abc import Mapping

VARIABLE = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_EMPTY = "\x00"
# An empty variable followed by punctuation or the end of a line takes its leading space with
# it ("Hi {first_name}, call" -> "Hi, call"); otherwise it takes its trailing space
# ("{first_name} {last_name} here" -> "here").
_EMPTY_BEFORE_PUNCTUATION = re.compile(r"[ \t]*\x00(?=[ \t\x00]*(?:[,.!?;:)]|\n|$))")
_EMPTY_WITH_SPACE = re.compile(r"\x00[ \t]*")


def template_variables(template: str) -> list[str]:
    """The variable names a template uses, in order of first use."""
    seen: dict[str, None] = {}
    for match in VARIABLE.finditer(template):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill a template; a variable with no value becomes nothing, never a literal `{name}`."""
    lowered = {str(k).lower(): v for k, v in values.items()}

    def substitute(match: re.Match[str]) -> str:
        value = lowered.get(match.group(1).lower())
        text = "" if value is None else str(value).strip()
        return text if text else _EMPTY

    filled = VARIABLE.sub(substitute, template)
    if _EMPTY not in filled:
        return filled
    filled = _EMPTY_BEFORE_PUNCTUATION.sub("", filled)
    filled = _EMPTY_WITH_SPACE.sub("", filled)
    return filled.strip(" \t")
