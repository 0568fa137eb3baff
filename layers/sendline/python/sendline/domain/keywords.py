"""What an inbound text asks for: opt-out, opt-in, help, or nothing in particular."""

from __future__ import annotations

import re
from enum import StrEnum


class KeywordAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                           "OPTOUT", "OPT OUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_PUNCTUATION = re.compile(r"[\s.!?,;:'\"]+")


def normalise_reply(body: str) -> str:
    """'  Stop. ' -> 'STOP': case, surrounding space and punctuation do not matter."""
    return _PUNCTUATION.sub(" ", body).strip().upper()


def classify(body: str) -> tuple[KeywordAction, str | None]:
    text = normalise_reply(body or "")
    if text in OPT_OUT_WORDS:
        return KeywordAction.OPT_OUT, text
    if text in OPT_IN_WORDS:
        return KeywordAction.OPT_IN, text
    if text in HELP_WORDS:
        return KeywordAction.HELP, text
    return KeywordAction.NONE, None
