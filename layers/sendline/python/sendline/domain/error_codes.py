"""What a carrier's error code means and what kind of problem it is
(../shared/reference/providers-and-rules.md, section 1.7).

The class says what to do about it: `permanent` (the number will not take texts: suppress it),
`transient` (try again later), `content` (the carrier filtered the message: change the words,
not the list), `sender_config` (the sending number or account needs fixing before it sends).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    meaning: str
    kind: str


_CODES = {
    "21211": ("Invalid 'To' phone number", "permanent"),
    "21408": ("SMS not enabled for the recipient's region (geo permissions)", "sender_config"),
    "21610": ("Recipient unsubscribed (replied STOP to this sender)", "permanent"),
    "21614": ("'To' is not a mobile number (landline or invalid)", "permanent"),
    "30001": ("Queue overflow", "transient"),
    "30002": ("Account suspended", "sender_config"),
    "30003": ("Unreachable handset (off, no signal, roaming)", "transient"),
    "30004": ("Message blocked by the recipient or the carrier", "permanent"),
    "30005": ("Unknown handset (number does not exist or is inactive)", "permanent"),
    "30006": ("Landline or unreachable carrier", "permanent"),
    "30007": ("Filtered by the carrier (spam or content)", "content"),
    "30008": ("Unknown error", "transient"),
    "30032": ("Toll-free number not verified", "sender_config"),
    "30034": ("Message from an unregistered number (US A2P 10DLC)", "sender_config"),
}


def describe(code: str) -> ErrorCode:
    meaning, kind = _CODES.get(code, ("Not in the reference table", "unknown"))
    return ErrorCode(code, meaning, kind)
