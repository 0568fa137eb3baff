"""Send windows on the paths that are not a campaign's: a lead's first text, drips, quick sends,
and the worker's last look before the carrier. A text outside its recipient's window waits,
`scheduled` with `due_at` at the window's next opening and `deferred_reason`; it is never sent
early and never dropped. Campaigns keep theirs in `campaigns.send_window_of`, applied by the
dispatcher and the worker's campaign checks.

The window is the recipient's state rule (domain/send_window.py) narrowed by the flow's
`send_window` when it has one. The account's default rule (settings `send_windows`) applies to
numbers whose state is unknown; it is read only for those, so a text to a placed number costs
no extra read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sendline.adapters.records import Records
from sendline.domain.clock import iso, parse_iso
from sendline.domain.send_window import SendWindow, StateRule, is_open, next_open, place_of
from sendline.domain.status import MessageStatus
from sendline.services.settings import AccountSettings, current_settings

OUTSIDE_SEND_WINDOW = "outside_send_window"
# The recipient's state caps the texts one person may get in 24 hours, and this one would pass it.
DAILY_CAP = "daily_cap"
# When the flow's window and the state's never meet within the horizon, look again this much later.
RETRY_WITHOUT_OPENING = timedelta(hours=1)


class Windows:
    """Each text's window, reading the account's default rule at most once per instance."""

    def __init__(self, records: Records, settings: AccountSettings | None = None):
        self._records = records
        self._default: StateRule | None = settings.send_windows.default_rule.rule() if settings else None

    def _default_rule(self) -> StateRule:
        if self._default is None:
            self._default = current_settings(self._records).send_windows.default_rule.rule()
        return self._default

    def of(self, phone: str, flow: Mapping[str, Any] | None = None) -> SendWindow:
        """The flow's own window (the federal one when it has none, as for a quick send)."""
        own = (flow or {}).get("send_window")
        window = SendWindow.parse(own["start"], own["end"]) if own else SendWindow()
        if place_of(phone).state is None:
            window = replace(window, unknown_state=self._default_rule())
        return window

    def next_opening(self, phone: str, now: datetime, flow: Mapping[str, Any] | None = None) -> datetime | None:
        """None when `phone` may be texted now, else when it next may."""
        window = self.of(phone, flow)
        if is_open(phone, now, window):
            return None
        return next_open(phone, now, window) or now + RETRY_WITHOUT_OPENING


def defer(records: Records, message: Mapping[str, Any], now: datetime, opens: datetime,
          reason: str = OUTSIDE_SEND_WINDOW) -> dict[str, Any]:
    """Back to `scheduled`, due at the window's opening. A drip taken out of `scheduled` counts
    as pending again (Records.transition), so the counters match where the text is."""
    return records.transition(message, MessageStatus.SCHEDULED, now, due_at=iso(opens),
                              fields={"deferred_reason": reason})


class Hold(StrEnum):
    """Why the worker does not send a text now."""

    DEFERRED = "deferred"  # back to `scheduled` at the next opening, or already waiting there
    NOT_MARKED_YET = "not_marked_yet"  # whoever queued it has not yet marked it `queued`


def hold_outside_window(records: Records, message: Mapping[str, Any], flow: Mapping[str, Any] | None,
                        now: datetime) -> Hold | None:
    """The worker's last check for a text that is not a campaign's: None to send it now.

    A text still `scheduled` was handed to the queue by someone (the lead API, the scheduler, a
    quick send) who marks it `queued` right after; deferring it before that mark would let the
    mark undo the deferral, so the worker looks again a moment later. One already due later is
    a stale copy: its due time brings it back."""
    opens = Windows(records).next_opening(message["to"], now, flow)
    if opens is None:
        return None
    return hold_until(records, message, now, opens, OUTSIDE_SEND_WINDOW)


def hold_until(records: Records, message: Mapping[str, Any], now: datetime, opens: datetime, reason: str) -> Hold:
    """Defer a text the worker must not send before `opens` (see hold_outside_window for why a
    text still `scheduled` is looked at again rather than deferred)."""
    if MessageStatus(message["status"]) == MessageStatus.SCHEDULED:
        due = message.get("due_at")
        return Hold.DEFERRED if due and parse_iso(due) > now else Hold.NOT_MARKED_YET
    defer(records, message, now, opens, reason)
    return Hold.DEFERRED
