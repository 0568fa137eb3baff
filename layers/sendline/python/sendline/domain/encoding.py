"""How a text travels as SMS: GSM-7 or UCS-2, how many segments, and smart encoding.

Carriers bill, throttle and cap per segment, so every count here must match what Twilio reports
in `num_segments`. The rules (GSM 03.38, and what senders do when concatenating):

- A text is GSM-7 when every character is in the basic table (1 septet) or the extension table
  (2 septets: ESC + code). A single character outside both forces the whole text to UCS-2, which
  counts UTF-16 code units (an astral emoji is a surrogate pair, 2 units).
- One segment holds 160 septets or 70 units. A longer text is split into segments of at most 153
  septets or 67 units (the user data header takes the rest), and a sender never splits an ESC
  pair or a surrogate pair across two segments, so a segment may carry one unit less.
- An empty text is 0 segments: providers reject an empty body instead of sending it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 03.38 default alphabet in table order, minus ESC (0x1B), which is not a character a
# user can type. Row by row: 0x00-0x0F, 0x10-0x1F, 0x20-0x3F, 0x40-0x5F, 0x60-0x7F.
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# The extension table: each costs two septets (ESC + code). "\f" is form feed.
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

SINGLE_SEGMENT: Final = {GSM7: 160, UCS2: 70}
CONCATENATED_SEGMENT: Final = {GSM7: 153, UCS2: 67}

_SMART_ENCODING: Final[dict[str, str]] = {
    **dict.fromkeys("\u201c\u201d\u201f\u00ab\u00bb\u02ba\uff02", '"'),
    **dict.fromkeys("\u2018\u2019\u201b\u02bc\u02bb\u00b4\u0060", "'"),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-"),
    "\u2026": "...",
    # Every Unicode space separator (category Zs) other than the plain space.
    **dict.fromkeys(
        "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
        "\u202f\u205f\u3000",
        " ",
    ),
}
_SMART_TABLE: Final = str.maketrans(_SMART_ENCODING)


@dataclass(frozen=True)
class EncodingReport:
    """What a text costs as SMS.

    `characters` is what a person counts on screen (a skin-toned thumbs-up or a flag is one);
    `units` is what the carrier counts: septets for GSM-7, UTF-16 code units for UCS-2.
    `per_segment` is the capacity used for the count: 160/70 for a single segment, 153/67 once
    the text is concatenated. `ucs2_characters` lists, sorted and without repeats, the characters
    that forced UCS-2 (empty for GSM-7 texts).
    """

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment: int
    ucs2_characters: tuple[str, ...]


def is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def analyse(text: str) -> EncodingReport:
    offending = tuple(sorted({c for c in text if not is_gsm7(c)}))
    if offending:
        encoding: Encoding = UCS2
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    else:
        encoding = GSM7
        costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
    units = sum(costs)
    if units == 0:
        segments, per_segment = 0, SINGLE_SEGMENT[encoding]
    elif units <= SINGLE_SEGMENT[encoding]:
        segments, per_segment = 1, SINGLE_SEGMENT[encoding]
    else:
        per_segment = CONCATENATED_SEGMENT[encoding]
        segments = _packed_segments(costs, per_segment)
    return EncodingReport(
        encoding=encoding,
        characters=count_user_characters(text),
        units=units,
        segments=segments,
        per_segment=per_segment,
        ucs2_characters=offending,
    )


def segment_count(text: str) -> int:
    return analyse(text).segments


def smart_encode(text: str) -> str:
    """Replace look-alike punctuation and spaces with their GSM-7 equivalents.

    Curly quotes, primes and acute accents become straight quotes, dashes and the minus sign
    become "-", an ellipsis becomes "..." (one character, three septets) and Unicode spaces become
    a plain space. The text is also put in Unicode composed form (NFC), which changes nothing a
    reader sees but turns "e" + combining acute into the GSM-7 "é". Emoji, CJK and letters outside
    GSM-7 are left alone, so the result may still need UCS-2.
    """
    return unicodedata.normalize("NFC", text).translate(_SMART_TABLE)


def _packed_segments(costs: list[int], capacity: int) -> int:
    # Greedy packing: a two-unit character (ESC pair, surrogate pair) that does not fit in what
    # is left of a segment starts the next one whole.
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments += 1
            used = 0
        used += cost
    return segments


def count_user_characters(text: str) -> int:
    """Count what a reader sees as characters (an approximation of Unicode grapheme clusters).

    Joined into the preceding character: combining marks, variation selectors, emoji skin-tone
    modifiers, tag characters (subdivision flags), the keycap mark, anything after a zero-width
    joiner, and "\\n" after "\\r". Two regional indicators make one flag.
    """
    count = 0
    previous = ""
    unpaired_indicator = False  # the previous character opened a flag that awaits its pair
    for char in text:
        code = ord(char)
        completes_flag = False
        if 0x1F1E6 <= code <= 0x1F1FF:
            completes_flag = unpaired_indicator
            unpaired_indicator = not unpaired_indicator
        else:
            unpaired_indicator = False
        joins = count > 0 and (
            completes_flag
            or previous == "\u200d"
            or char == "\u200d"
            or (previous == "\r" and char == "\n")
            or _is_extender(char, code)
        )
        if not joins:
            count += 1
        previous = char
    return count


def _is_extender(char: str, code: int) -> bool:
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters
        or 0xE0100 <= code <= 0xE01EF  # variation selectors supplement
    )
