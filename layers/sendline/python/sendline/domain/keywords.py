"""What an inbound text asks for: opt-out, opt-in, help, an operator's keyword, or nothing.

Keywords match the whole reply, whatever its case, surrounding space and punctuation ("Stop.",
" stop! ", "STOP ALL"). An opt-out keyword followed or preceded only by courtesy words
("STOP please", "please stop now") is still that keyword. Beyond keywords, plain-language
revocation ("please stop texting me", "wrong number", "no más") is an opt-out when the reply
contains one of the phrases in `data/opt_out_phrases.json`, word for word; ordinary replies
that merely contain the word "stop" ("stop by tomorrow?", "I can't stop smiling") are not.
"""

from __future__ import annotations

import json
import re
import unicodedata
from enum import StrEnum
from functools import lru_cache
from pathlib import Path


class KeywordAction(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                           "OPTOUT", "OPT OUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# Words that do not change what a one-keyword reply asks for.
COURTESY = frozenset({"PLEASE", "PLS", "PLZ", "NOW", "THANKS", "THANK", "YOU", "TY", "ASAP", "IMMEDIATELY", "OK",
                      "OKAY", "JUST", "ALREADY"})

_APOSTROPHES = re.compile(r"['’‘`´]")
_NOT_WORD = re.compile(r"[^0-9A-Z]+")
PHRASES_FILE = Path(__file__).parent / "data" / "opt_out_phrases.json"


def normalise_reply(body: str) -> str:
    """'  Stop. ' -> 'STOP', 'No más!' -> 'NO MAS', "don't" -> 'DONT': case, accents,
    apostrophes, punctuation and spacing do not matter."""
    text = unicodedata.normalize("NFKD", body or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _APOSTROPHES.sub("", text).upper()
    return _NOT_WORD.sub(" ", text).strip()


@lru_cache(maxsize=1)
def opt_out_phrases() -> tuple[tuple[str, ...], ...]:
    """The phrase list, each phrase as its normalised words."""
    phrases = json.loads(PHRASES_FILE.read_text(encoding="utf-8"))["phrases"]
    return tuple(tuple(normalise_reply(p).split()) for p in phrases)


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[i:i + size]) == phrase for i in range(len(words) - size + 1))


def _keyword(text: str, vocabulary: frozenset[str]) -> str | None:
    if text in vocabulary:
        return text
    words = [w for w in text.split() if w not in COURTESY]
    if len(set(words)) == 1 and words[0] in vocabulary:
        return words[0]  # "STOP please", "stop stop"
    core = " ".join(words)
    if words and text != core and core in vocabulary:
        return core  # "opt out please"
    return None


def classify(body: str) -> tuple[KeywordAction, str | None]:
    """The action and what matched: the keyword ('STOP') or, for plain language, the phrase
    ('phrase: REMOVE ME')."""
    text = normalise_reply(body)
    if not text:
        return KeywordAction.NONE, None
    for action, vocabulary in ((KeywordAction.OPT_OUT, OPT_OUT_WORDS), (KeywordAction.OPT_IN, OPT_IN_WORDS),
                               (KeywordAction.HELP, HELP_WORDS)):
        keyword = _keyword(text, vocabulary)
        if keyword:
            return action, keyword
    words = text.split()
    matched = [phrase for phrase in opt_out_phrases() if _contains(words, phrase)]
    if matched:
        return KeywordAction.OPT_OUT, "phrase: " + " ".join(max(matched, key=len))
    return KeywordAction.NONE, None
