"""Whether a lead's number is worth texting, judged on what a phone validation provider said."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rule reads the adapter's record; it needs nothing else from the adapter
    from sendline.adapters.phone_intel import PhoneIntel

INVALID_NUMBER = "invalid_number"
LANDLINE = "landline"
LOW_ACTIVITY_SCORE = "low_activity_score"


def screen(intel: PhoneIntel, min_score: int) -> str | None:
    """The reason not to text this number, or None to text it.

    A number that is not valid, or is a landline (which cannot receive texts: the carrier
    answers 30006), is skipped whatever its score. A score below `min_score` skips it too; no
    score at all (the provider had too few signals, or gives none) never does, because an unknown
    is not evidence that nobody uses the number.
    """
    if not intel.valid:
        return INVALID_NUMBER
    if intel.line_type == "landline":
        return LANDLINE
    if intel.activity_score is not None and intel.activity_score < min_score:
        return LOW_ACTIVITY_SCORE
    return None
