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


_NAME = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*")
_SHOWN = 30  # characters of a broken placeholder quoted back to the sender


def placeholder_problem(template: str) -> str | None:
    """Why a brace in the template is not part of a `{name}` the renderer fills, or None when
    every brace is.

    A broken placeholder (`Hi {first name`, `{1st}`) would otherwise go out to every recipient
    as typed. The renderer has no escape for a literal brace, so a brace is always a variable's.
    """
    position = 0
    while True:
        opening, closing = template.find("{", position), template.find("}", position)
        if closing != -1 and (opening == -1 or closing < opening):
            return (f'"}}" at character {closing + 1} has no opening "{{" '
                    "(braces only mark variables, like {first_name})")
        if opening == -1:
            return None
        end, nested = template.find("}", opening + 1), template.find("{", opening + 1)
        if end == -1 or (nested != -1 and nested < end):
            unclosed = template[opening:nested if nested != -1 else len(template)].rstrip()
            return f'"{_shown(unclosed)}" has no closing "}}"'
        placeholder = template[opening:end + 1]
        if not _NAME.fullmatch(placeholder[1:-1]):
            return (f'"{_shown(placeholder)}" is not a variable: a name is letters, digits and _, '
                    "and does not start with a digit")
        position = end + 1


def _shown(fragment: str) -> str:
    return fragment if len(fragment) <= _SHOWN else fragment[:_SHOWN] + "…"


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
