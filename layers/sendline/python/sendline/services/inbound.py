"""Inbound texts: each one stored as it came, with what it asked for and what was done.

- Opt-out (a keyword, or plain language such as "please stop texting me"): the number goes on
  the DNC list, its leads' pending texts are cancelled (queued campaign texts are skipped by the
  worker's last-moment check), and one confirmation goes back, with no marketing, unless the
  carrier already blocks the sender: Twilio does for its standard single-word keywords, and says
  so with `OptOutType` when Advanced Opt-Out is on. A number already on the list gets no second
  confirmation.
- Opt-in (START, UNSTOP; YES only from a number that opted out by keyword): off the DNC list and
  one confirmation, under the same carrier rule. An entry the operator, an import or a delivery
  failure put there stays: only the recipient's own opt-out is theirs to take back.
- HELP, INFO: the brand's HELP text.
- A brand's own keyword: its action (tag the number's leads, reply, or forward it as a lead).
- Anything else: stops the drips of the number's leads whose flow says so (the default).

Replies go back as TwiML `<Message>`, which the carrier sends from the number that was texted.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from aws_lambda_powertools import Logger

from sendline.adapters.records import Records
from sendline.domain.clock import iso, parse_iso
from sendline.domain.keywords import KeywordAction, classify, normalise_reply
from sendline.domain.phones import PhoneRejected, mask_phone, normalise_phone
from sendline.domain.status import MessageStatus
from sendline.errors import ConditionFailed, FieldProblem, NotFound, ValidationFailed

logger = Logger(child=True)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Twilio's default STOP filtering answers these itself, when they are the whole body, and blocks
# or unblocks the sender (providers-and-rules §1.8); a reply of ours would be a second
# confirmation, or refused (21610).
CARRIER_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                              "START", "YES", "UNSTOP"})
# Whose entries a START may take back: the recipient's own opt-outs, and the carrier's record of
# one (21610), but never an entry the operator, an import or a failure code made.
OWN_OPT_OUT_SOURCES = frozenset({"keyword", "phrase"})
MAX_LISTING_DAYS = 92
MAX_COUNTED = 20_000


@dataclass(frozen=True)
class InboundResult:
    record: dict[str, Any]
    reply: str | None

    def twiml(self) -> str:
        if not self.reply:
            return EMPTY_TWIML
        return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(self.reply)}</Message></Response>'


# -- the webhook ----------------------------------------------------------------------------------
def handle_inbound(records: Records, params: Mapping[str, str], now: datetime, *,
                   carrier_handles_keywords: bool = True) -> InboundResult:
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
    if not sid:
        raise ValidationFailed(FieldProblem("MessageSid", "is required"))
    try:
        sender = normalise_phone(params.get("From")).e164
    except PhoneRejected as exc:
        raise ValidationFailed(FieldProblem("From", exc.reason)) from None
    seen = records.get_inbound(sid)
    if seen:  # the carrier retried the webhook: everything was done the first time
        return InboundResult(seen, None)
    to = _number(params.get("To"))
    body = params.get("Body", "")
    brand = _brand_for(records, to)
    action, keyword = classify(body)
    blocked_by_carrier = params.get("OptOutType", "").upper()
    # Twilio's filtering takes the whole body as it came ("STOP", " stop "), not "Stop." or
    # "stop all": those reach only us, and only we can confirm them.
    carrier_keyword = carrier_handles_keywords and body.strip().upper() in CARRIER_KEYWORDS

    context = _Context(records, sender, to, brand, now, sid, body)
    if action == KeywordAction.OPT_IN and keyword == "YES" and not _opted_out_by_keyword(records.get_dnc(sender)):
        action, keyword = KeywordAction.NONE, None  # an ordinary "yes"
    if action == KeywordAction.OPT_OUT:
        taken, reply = _opt_out(context, keyword, blocked_by_carrier == "STOP" or carrier_keyword)
    elif action == KeywordAction.OPT_IN:
        taken, reply = _opt_in(context, keyword, blocked_by_carrier == "START" or carrier_keyword)
    elif action == KeywordAction.HELP:
        taken, reply = "help_sent", None if blocked_by_carrier == "HELP" else help_text(brand)
    else:
        custom = _brand_keyword(brand, body)
        if custom:
            keyword = custom["keyword"]
            taken, reply = _brand_action(context, custom)
        else:
            taken, reply = _other_reply(context)

    answered = records.last_text(sender, to, now) if to else None
    if answered is not None and not answered.get("attempted_at"):
        answered = None
    record = {"message_sid": sid, "from": sender, "from_masked": mask_phone(sender), "to": to, "body": body,
              "keyword": keyword, "intent": action.value if keyword else KeywordAction.NONE.value, "action": taken,
              "reply": reply, "brand_id": brand["brand_id"] if brand else None,
              "drips_cancelled": context.cancelled, "received_at": iso(now),
              "answers_message_id": answered["message_id"] if answered else None}
    if not records.put_inbound(record, answered):
        return InboundResult(records.get_inbound(sid) or record, None)
    return InboundResult(record, reply)


@dataclass
class _Context:
    records: Records
    sender: str
    to: str | None
    brand: dict[str, Any] | None
    now: datetime
    sid: str
    body: str
    cancelled: int = 0

    def event(self, kind: str, keyword: str | None) -> None:
        self.records.put_phone_event(self.sender, {"at": iso(self.now), "message_sid": self.sid, "event": kind,
                                                   "keyword": keyword, "body": self.body, "to": self.to})


def _sending_number(text: str) -> str:
    """A short code as it is, any other number in E.164; PhoneRejected if it is neither."""
    if text.isdigit() and 5 <= len(text) <= 6:
        return text
    return normalise_phone(text).e164


def _number(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return _sending_number(raw.strip())
    except PhoneRejected:
        return raw.strip()


def _brand_for(records: Records, to: str | None) -> dict[str, Any] | None:
    if not to:
        return None
    number = records.get_entity("NUMBER", to)
    if not number or not number.get("brand_id"):
        return None
    return records.get_entity("BRAND", number["brand_id"])


def _opted_out_by_keyword(entry: Mapping[str, Any] | None) -> bool:
    return bool(entry) and entry.get("source") in OWN_OPT_OUT_SOURCES


def _opt_out(context: _Context, keyword: str, carrier_answers: bool) -> tuple[str, str | None]:
    source = "phrase" if keyword.startswith("phrase: ") else "keyword"
    newly = context.records.add_dnc(context.sender, source, context.now, detail=keyword)
    context.cancelled = cancel_pending(context.records, context.sender, context.now, reason="opted_out")
    context.event("opt_out", keyword)
    if not newly:
        return "already_opted_out", None
    return "opted_out", None if carrier_answers else opt_out_confirmation(context.brand)


def _opt_in(context: _Context, keyword: str, carrier_answers: bool) -> tuple[str, str | None]:
    entry = context.records.get_dnc(context.sender)
    if entry is None:
        return "not_opted_out", None
    if not (_opted_out_by_keyword(entry) or (entry.get("source") == "auto_dnc" and str(entry.get("code")) == "21610")):
        return "opt_in_refused", None  # listed by the operator, an import or a failure code
    context.records.remove_dnc(context.sender)
    context.event("opt_in", keyword)
    return "opted_in", None if carrier_answers else opt_in_confirmation(context.brand)


def _other_reply(context: _Context) -> tuple[str, str | None]:
    flows: dict[str, dict[str, Any] | None] = {}
    stopped = 0
    for lead in context.records.leads_for_phone(context.sender):
        if context.to and lead.get("from_number") and lead["from_number"] != context.to:
            continue  # a reply to another sender is not a reply to this flow
        if lead["flow_id"] not in flows:
            flows[lead["flow_id"]] = context.records.get_flow(lead["flow_id"])
        flow = flows[lead["flow_id"]]
        if flow is None or not flow.get("stop_drips_on_reply", True):
            continue
        stopped += _cancel_lead(context.records, lead["lead_id"], context.now, reason="replied", drips_only=True)
    context.cancelled = stopped
    return ("drips_stopped" if stopped else "none"), None


# -- brands' own keywords ------------------------------------------------------------------------
def _brand_keyword(brand: Mapping[str, Any] | None, body: str) -> dict[str, Any] | None:
    if not brand:
        return None
    text = normalise_reply(body)
    return next((k for k in brand.get("keywords") or [] if k["keyword"] == text), None)


def _brand_action(context: _Context, keyword: Mapping[str, Any]) -> tuple[str, str | None]:
    action = keyword["action"]
    if action == "tag":
        for lead in context.records.leads_for_phone(context.sender):
            context.records.tag_lead(lead["lead_id"], keyword["tag"])
        return f"tagged:{keyword['tag']}", keyword.get("reply")
    if action == "forward_lead":
        return _forward_as_lead(context, keyword), keyword.get("reply")
    return "auto_replied", keyword.get("reply")


def _forward_as_lead(context: _Context, keyword: Mapping[str, Any]) -> str:
    from sendline import runtime
    from sendline.services.api_keys import ApiIdentity
    from sendline.services.leads import RequestOrigin, submit_lead

    payload = {"flow_id": keyword["flow_id"], "phone": context.sender, "source": f"keyword {keyword['keyword']}",
               "opt_in_text": context.body}
    try:
        result = submit_lead(context.records, runtime.send_queue(), payload,
                             ApiIdentity(key_id="inbound", name=f"inbound keyword {keyword['keyword']}"),
                             RequestOrigin(user_agent="inbound text"), context.now)
    except (NotFound, ValidationFailed) as exc:
        logger.warning("keyword lead not created", extra={"keyword": keyword["keyword"], "reason": str(exc)})
        return "forward_failed"
    return f"forwarded:{result.lead_id}"


# -- the number's pending texts ------------------------------------------------------------------
def cancel_pending(records: Records, phone: str, now: datetime, *, reason: str) -> int:
    """Cancel every text still waiting for this number's leads: drips become `cancelled`, a
    first text not yet sent `skipped`, each with the reason."""
    return sum(_cancel_lead(records, lead["lead_id"], now, reason=reason, drips_only=False)
               for lead in records.leads_for_phone(phone))


def _cancel_lead(records: Records, lead_id: str, now: datetime, *, reason: str, drips_only: bool) -> int:
    _, messages = records.get_lead(lead_id)
    cancelled = 0
    for message in messages:
        step = int(message.get("step") or 0)
        if message["status"] not in (MessageStatus.SCHEDULED, MessageStatus.QUEUED) or (drips_only and step == 0):
            continue
        status = MessageStatus.CANCELLED if step > 0 else MessageStatus.SKIPPED
        try:
            records.transition(message, status, now, fields={"skip_reason": reason})
        except ConditionFailed:
            continue  # a worker claimed it meanwhile; its last-moment DNC check decides
        cancelled += 1
    return cancelled


# -- replies ---------------------------------------------------------------------------------------
def _brand_name(brand: Mapping[str, Any] | None) -> str:
    return brand["name"] if brand else "Sendline"


def opt_out_confirmation(brand: Mapping[str, Any] | None) -> str:
    return (f"{_brand_name(brand)}: You are unsubscribed and will receive no more messages. "
            "Reply START to resubscribe.")


def opt_in_confirmation(brand: Mapping[str, Any] | None) -> str:
    return f"{_brand_name(brand)}: You are resubscribed. Reply HELP for help, STOP to opt out."


def help_text(brand: Mapping[str, Any] | None) -> str:
    if brand and brand.get("help_text"):
        return brand["help_text"]
    contact = f" Call {brand['call_number_display']}." if brand and brand.get("call_number_display") else ""
    return f"{_brand_name(brand)}:{contact} Msg & data rates may apply. Reply STOP to opt out."


# -- the operator's view ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InboundFilter:
    number: str | None = None
    brand_id: str | None = None
    keyword: str | None = None  # a keyword ("STOP"), an intent ("opt_out") or "none"
    since: datetime | None = None
    until: datetime | None = None


def parse_filter(query: Mapping[str, str | None], now: datetime) -> InboundFilter:
    def moment(name: str) -> datetime | None:
        raw = query.get(name)
        if not raw:
            return None
        try:
            return parse_iso(raw if "T" in raw else f"{raw}T00:00:00Z")
        except ValueError:
            raise ValidationFailed(FieldProblem(name, "must be a date (2026-12-01) or an ISO time")) from None

    until = moment("until") or now
    since = moment("since") or until - timedelta(days=7)
    if since > until:
        raise ValidationFailed(FieldProblem("since", "must be before until"))
    if (until - since).days > MAX_LISTING_DAYS:
        raise ValidationFailed(FieldProblem("since", f"the range is at most {MAX_LISTING_DAYS} days"))
    return InboundFilter(number=_number_filter(query.get("number")), brand_id=query.get("brand_id") or None,
                         keyword=(query.get("keyword") or "").strip() or None, since=since, until=until)


def _number_filter(raw: str | None) -> str | None:
    """The sending number to filter by; one that cannot be a number is refused, not searched
    for and never found."""
    if not raw or not raw.strip():
        return None
    try:
        return _sending_number(raw.strip())
    except PhoneRejected as exc:
        reason = f"must be a sending number or a short code ({exc.reason})"
        raise ValidationFailed(FieldProblem("number", reason)) from None


def _matches(record: Mapping[str, Any], wanted: InboundFilter) -> bool:
    if wanted.number and record.get("to") != wanted.number:
        return False
    if wanted.brand_id and record.get("brand_id") != wanted.brand_id:
        return False
    if wanted.keyword:
        asked = wanted.keyword
        if asked.lower() in {a.value for a in KeywordAction}:
            if (record.get("intent") or "none") != asked.lower():
                return False
        elif normalise_reply(asked) != normalise_reply(record.get("keyword") or ""):
            return False
    received = record.get("received_at") or ""
    return iso(wanted.since) <= received <= iso(wanted.until)


def _days(wanted: InboundFilter) -> list[str]:
    day, last = wanted.until.date(), wanted.since.date()
    days = []
    while day >= last:
        days.append(day.isoformat())
        day -= timedelta(days=1)
    return days


def list_inbound(records: Records, wanted: InboundFilter, *, limit: int = 50, cursor: str | None = None,
                 show_phones: bool = False) -> dict[str, Any]:
    """Newest first, `limit` per page; the cursor continues where the last page ended."""
    days = _days(wanted)
    start_day, before = _read_cursor(cursor, days)
    found: list[tuple[str, dict[str, Any]]] = []  # (day, record), up to one beyond the page
    for day in days[days.index(start_day):]:
        while len(found) <= limit:
            page = records.inbound_on_day(day, before=before, limit=200)
            for record in page:
                before = record["_sort"]
                if _matches(record, wanted):
                    found.append((day, record))
                    if len(found) > limit:
                        break
            if len(page) < 200:
                break
        if len(found) > limit:
            break
        before = None
    next_cursor = _cursor(*found[limit - 1]) if len(found) > limit else None
    return {"inbound": [_view(r, show_phones) for _, r in found[:limit]], "next_cursor": next_cursor}


def inbound_by_number(records: Records, wanted: InboundFilter) -> dict[str, Any]:
    """Per number texted: texts received and what they asked for, over the filter's range."""
    counts: dict[str, Counter[str]] = {}
    brands: dict[str, str | None] = {}
    seen = 0
    for day in _days(wanted):
        before = None
        while seen < MAX_COUNTED:
            page = records.inbound_on_day(day, before=before, limit=500)
            for record in page:
                before = record["_sort"]
                seen += 1
                if not _matches(record, wanted):
                    continue
                number = record.get("to") or "unknown"
                tally = counts.setdefault(number, Counter())
                tally["received"] += 1
                tally[record.get("intent") or "none"] += 1
                brands[number] = record.get("brand_id")
            if len(page) < 500:
                break
    rows = [{"number": n, "brand_id": brands[n], "received": c["received"], "opt_outs": c["opt_out"],
             "opt_ins": c["opt_in"], "help": c["help"], "other": c["none"]}
            for n, c in sorted(counts.items(), key=lambda kv: (-kv[1]["received"], kv[0]))]
    return {"numbers": rows, "since": iso(wanted.since), "until": iso(wanted.until),
            "complete": seen < MAX_COUNTED}


VIEW_FIELDS = ("message_sid", "received_at", "from", "to", "brand_id", "body", "keyword", "intent", "action", "reply",
               "drips_cancelled")


def _view(record: Mapping[str, Any], show_phones: bool) -> dict[str, Any]:
    view = {k: record.get(k) for k in VIEW_FIELDS}
    if not show_phones:
        view["from"] = record.get("from_masked") or mask_phone(record["from"])
    return view


def _cursor(day: str, record: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([day, record["_sort"]]).encode()).decode()


def _read_cursor(cursor: str | None, days: list[str]) -> tuple[str, str | None]:
    if not cursor:
        return days[0], None
    try:
        day, sort_key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed(FieldProblem("cursor", "is not a cursor this listing gave")) from None
    if day not in days or not isinstance(sort_key, str):
        raise ValidationFailed(FieldProblem("cursor", "does not belong to this range"))
    return day, sort_key
