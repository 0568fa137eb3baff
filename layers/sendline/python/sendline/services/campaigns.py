"""Bulk campaigns: a brand's pool texts a contact list with one or more creatives, at a set pace.

Status machine (anything else is a 409):
    draft -> scheduled -> running <-> paused -> ... -> completed
    cancelled from any state that is not final.
`scheduled -> running` and `running -> completed` are the dispatcher's; the rest the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from sendline.adapters.records import Records
from sendline.domain.clock import iso, parse_iso
from sendline.domain.ids import new_id
from sendline.domain.phones import normalise_phone
from sendline.domain.send_window import SendWindow
from sendline.domain.templates import render, template_variables
from sendline.errors import ConditionFailed, Conflict, FieldProblem, NotFound, ValidationFailed
from sendline.services import catalog
from sendline.services.settings import AutoPauseSettings, DefaultWindowRule, ValidationSettings, current_settings
from sendline.services.validation import parse

MAX_CREATIVES = 10
# A queued campaign text no worker has claimed by then was lost on its way to SQS (or its
# retry was): the dispatcher queues it again. The worker's claim makes a second copy harmless.
REQUEUE_AFTER = timedelta(minutes=5)


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


S = CampaignStatus
FINAL = frozenset({S.COMPLETED, S.CANCELLED})
LEGAL = {
    S.DRAFT: {S.SCHEDULED, S.CANCELLED},
    S.SCHEDULED: {S.RUNNING, S.CANCELLED},
    S.RUNNING: {S.PAUSED, S.COMPLETED, S.CANCELLED},
    S.PAUSED: {S.RUNNING, S.CANCELLED},
    S.COMPLETED: set(),
    S.CANCELLED: set(),
}
# The dispatcher and the auto-pause check only look at campaigns in these states.
LIVE = frozenset({S.SCHEDULED, S.RUNNING, S.PAUSED})


def can_change(current: str, new: str) -> bool:
    return CampaignStatus(new) in LEGAL[CampaignStatus(current)]


class CreativeDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = Field(default=None, max_length=120)
    body: catalog.MessageBody | None = None
    template_id: StrictStr | None = None
    weight: StrictInt = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_source(self) -> CreativeDraft:
        if (self.body is None) == (self.template_id is None):
            raise ValueError("give either body or template_id")
        return self


class WindowDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: StrictStr = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: StrictStr = Field(default="21:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")

    @model_validator(mode="after")
    def _ordered(self) -> WindowDraft:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class CampaignDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: StrictStr = Field(min_length=1, max_length=120)
    brand_id: StrictStr
    pool: StrictStr | None = Field(default=None, pattern=catalog.POOL_NAME)
    list_id: StrictStr
    creatives: list[CreativeDraft] = Field(min_length=1, max_length=MAX_CREATIVES)
    rate_per_second: StrictFloat = Field(default=1.0, gt=0, le=1000)
    start_at: datetime | None = None
    send_window: WindowDraft = WindowDraft()
    append_opt_out_footer: StrictBool = True
    validation: ValidationSettings | None = None
    auto_pause: AutoPauseSettings | None = None

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2026-12-03T15:00:00Z")
        return value


class CampaignChanges(BaseModel):
    """What may change after creation. Rate and window may change while the campaign runs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: StrictStr | None = Field(default=None, min_length=1, max_length=120)
    rate_per_second: StrictFloat | None = Field(default=None, gt=0, le=1000)
    start_at: datetime | None = None
    send_window: WindowDraft | None = None
    auto_pause: AutoPauseSettings | None = None


def _creatives(records: Records, drafts: list[CreativeDraft]) -> list[dict[str, Any]]:
    creatives = []
    for i, draft in enumerate(drafts, start=1):
        body = draft.body
        if draft.template_id:
            body = catalog.get_template(records, draft.template_id, field=f"creatives.{i - 1}.template_id")["body"]
        creatives.append({"creative_id": f"c{i}", "name": draft.name or f"Creative {i}", "body": body,
                          "template_id": draft.template_id, "weight": draft.weight})
    return creatives


def create_campaign(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(CampaignDraft, body)
    brand = catalog.get_brand(records, draft.brand_id)
    contact_list = records.get_entity("LIST", draft.list_id)
    if not contact_list:
        raise NotFound(FieldProblem("list_id", "no contact list with this id"))
    settings = current_settings(records)
    campaign_id = new_id("cm")
    campaign = {
        "campaign_id": campaign_id,
        "name": draft.name,
        "brand_id": brand["brand_id"],
        "pool": draft.pool or brand["default_pool"],
        "list_id": draft.list_id,
        "creatives": _creatives(records, draft.creatives),
        "rate_per_second": draft.rate_per_second,
        "start_at": iso(draft.start_at) if draft.start_at else None,
        "send_window": draft.send_window.model_dump(),
        # For numbers whose state is unknown; copied like the other settings.
        "send_window_default_rule": settings.send_windows.default_rule.model_dump(),
        "append_opt_out_footer": draft.append_opt_out_footer,
        "validation": (draft.validation or settings.validation).model_dump(),
        "auto_pause": (draft.auto_pause or settings.auto_pause).model_dump(),
        "price_per_segment": settings.prices.price_per_segment,
        "status": S.DRAFT.value,
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    records.create_entity("CAMPAIGN", campaign_id, campaign, listing=("CAMPAIGNS", f"{iso(now)}#{campaign_id}"))
    return campaign


def get_campaign(records: Records, campaign_id: str, consistent: bool = False) -> dict[str, Any]:
    campaign = records.get_entity("CAMPAIGN", campaign_id, consistent=consistent)
    if not campaign:
        raise NotFound(FieldProblem("campaign_id", "no campaign with this id"))
    return campaign


def list_campaigns(records: Records, limit: int = 200) -> list[dict[str, Any]]:
    return records.list_entities("CAMPAIGNS", limit=limit)


def update_campaign(records: Records, campaign_id: str, body: object, now: datetime) -> dict[str, Any]:
    changes = parse(CampaignChanges, body)
    campaign = get_campaign(records, campaign_id, consistent=True)
    if CampaignStatus(campaign["status"]) in FINAL:
        raise Conflict(FieldProblem("status", f"a {campaign['status']} campaign cannot change"))
    fields = changes.model_dump(exclude_unset=True, exclude={"start_at"})
    if changes.start_at is not None:
        if campaign["status"] not in (S.DRAFT, S.SCHEDULED):
            raise Conflict(FieldProblem("start_at", f"cannot move the start of a {campaign['status']} campaign"))
        fields["start_at"] = iso(changes.start_at)
    return public_view(records.update_entity("CAMPAIGN", campaign_id, set_fields={**fields, "updated_at": iso(now)}))


# -- status changes ---------------------------------------------------------------------------
def change_status(records: Records, campaign_id: str, new: CampaignStatus, now: datetime,
                  fields: dict[str, Any] | None = None, expected: str | None = None) -> dict[str, Any]:
    """Move the campaign to `new` if that is legal from its current status; 409 otherwise.

    The write is conditional on the status read, so two racing changes cannot both apply."""
    campaign = get_campaign(records, campaign_id, consistent=True)
    current = campaign["status"]
    if expected is not None and current != expected:
        raise Conflict(FieldProblem("status", f"the campaign is {current}, not {expected}"))
    if not can_change(current, new):
        raise Conflict(FieldProblem("status", f"a {current} campaign cannot become {new.value}"))
    stamp = iso(now)
    changes = {"status": new.value, "updated_at": stamp, f"{new.value}_at": stamp, **(fields or {})}
    live = records.live_campaign_fields(campaign_id) if new in LIVE else None
    try:
        return public_view(records.update_entity(
            "CAMPAIGN", campaign_id, set_fields={**changes, **(live or {})},
            condition="#c_status = :current", values={":current": current}))
    except ConditionFailed:
        raise Conflict(FieldProblem("status", "the campaign changed meanwhile; read it again")) from None


def launch_campaign(records: Records, campaign_id: str, body: object, now: datetime) -> dict[str, Any]:
    """draft -> scheduled, after checking that everything the sends need is in place."""
    campaign = get_campaign(records, campaign_id, consistent=True)
    start_at = campaign.get("start_at")
    if isinstance(body, dict) and body.get("start_at"):
        try:
            start = datetime.fromisoformat(str(body["start_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(FieldProblem("start_at", "must be an ISO 8601 time")) from None
        if start.tzinfo is None:
            raise ValidationFailed(FieldProblem("start_at", "must include a time zone"))
        start_at = iso(start)
    numbers = catalog.pool_numbers(records, campaign["brand_id"], campaign["pool"])
    if not numbers:
        raise Conflict(FieldProblem("pool", f"pool {campaign['pool']!r} has no active sending numbers"))
    contact_list = records.get_entity("LIST", campaign["list_id"])
    contacts = int((contact_list or {}).get("contacts") or 0)
    if contacts == 0:
        raise Conflict(FieldProblem("list_id", "the contact list has no contacts"))
    return change_status(records, campaign_id, S.SCHEDULED, now, expected=S.DRAFT.value, fields={
        "start_at": start_at or iso(now), "total_contacts": contacts,
        "pool_mps": sum(float(n["mps"]) for n in numbers)})


def pause_campaign(records: Records, campaign_id: str, now: datetime, reason: str = "operator",
                   figures: dict[str, Any] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"pause_reason": reason}
    if figures:
        fields["auto_pause_figures"] = figures
    return change_status(records, campaign_id, S.PAUSED, now, fields=fields, expected=S.RUNNING.value)


def resume_campaign(records: Records, campaign_id: str, now: datetime) -> dict[str, Any]:
    return change_status(records, campaign_id, S.RUNNING, now, fields={"pause_reason": None},
                         expected=S.PAUSED.value)


def cancel_campaign(records: Records, campaign_id: str, now: datetime) -> dict[str, Any]:
    return change_status(records, campaign_id, S.CANCELLED, now)


# -- what the operator sees ---------------------------------------------------------------------
COUNTED = ("messages", "waiting", "attempted", "sent", "delivered", "undelivered", "failed", "unknown",
           "skipped", "cancelled", "deferred", "segments", "cost_micros", "lookups", "lookup_cost_micros")


def progress(records: Records, campaign: dict[str, Any]) -> dict[str, Any]:
    """Counts by state and the share of contacts that reached an outcome, from the counters."""
    scope = f"CAMP#{campaign['campaign_id']}"
    counters = records.counters([(scope, "TOTAL")])[(scope, "TOTAL")]
    counts = {name: counters.get(name, 0) for name in COUNTED}
    skipped_by_reason = {k.removeprefix("skipped_"): v for k, v in counters.items()
                         if k.startswith("skipped_") and v}
    total = int(campaign.get("total_contacts") or 0)
    done = counts["attempted"] + counts["skipped"] + counts["cancelled"]
    sends = counts["attempted"]
    errors = counts["failed"] + counts["undelivered"]
    return {
        "total_contacts": total,
        "not_yet_released": max(0, total - counts["messages"]),
        "done": done,
        "percent": round(100.0 * done / total, 1) if total else 0.0,
        **counts,
        "skipped_by_reason": skipped_by_reason,
        "cost": round((counts["cost_micros"] + counts["lookup_cost_micros"]) / 1_000_000, 4),
        "error_rate_pct": round(100.0 * errors / sends, 2) if sends else 0.0,
        "delivery_rate_pct": round(100.0 * counts["delivered"] / counts["sent"], 2) if counts["sent"] else 0.0,
    }


def public_view(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign as the API shows it: the dispatcher's bookmark stays inside."""
    return {k: v for k, v in campaign.items() if k != "cursor"}


def campaign_view(records: Records, campaign_id: str) -> dict[str, Any]:
    campaign = get_campaign(records, campaign_id)
    return {**public_view(campaign), "progress": progress(records, campaign)}


def recent_messages(records: Records, campaign_id: str, limit: int) -> list[dict[str, Any]]:
    """The campaign's texts by last change, newest first: status, creative, sender, reason."""
    get_campaign(records, campaign_id)
    fields = ("message_id", "to_masked", "from_number", "creative_id", "status", "skip_reason", "deferred_reason",
              "error_code", "updated_at")
    return [{f: m.get(f) for f in fields if m.get(f) is not None}
            for m in records.list_entities(f"CAMPMSG#{campaign_id}", limit=limit)]


def message_body(campaign: dict[str, Any], creative: dict[str, Any], brand: dict[str, Any],
                 contact: dict[str, Any]) -> str:
    """A creative filled in for one contact, with the brand's opt-out footer when the text
    does not already tell the recipient how to stop."""
    values = {**(contact.get("fields") or {}), "first_name": contact.get("first_name"),
              "last_name": contact.get("last_name"), "phone": _national(contact["phone"]),
              "call_number": brand.get("call_number_display"), "brand": brand.get("name")}
    body = render(creative["body"], values)
    footer = brand.get("opt_out_footer")
    if campaign.get("append_opt_out_footer", True) and footer and "stop" not in body.lower():
        body = f"{body}\n{footer}"
    return body


def _national(e164: str) -> str:
    try:
        return normalise_phone(e164).national
    except ValueError:
        return e164


SAMPLE_CONTACT = {"phone": "+12125550142", "first_name": "Alex", "last_name": "Rivera", "fields": {}}
# Contacts a preview checks against the DNC list one by one; past that it estimates from their
# share, so a preview of a list of millions stays a quick read.
PREVIEW_DNC_CHECKS = 10_000
PREVIEW_CHUNK = 100  # contacts read, and looked up on the DNC list, at a time


@dataclass
class DncCheck:
    """What a preview found of the campaign's contacts on the DNC list today."""

    checked: int = 0
    on_dnc: int = 0
    complete: bool = False  # every contact was checked
    first_texted: dict[str, Any] | None = None  # the first contact who would be texted

    def excluded(self, contacts: int) -> int:
        """Contacts on the DNC list: counted, or estimated from the share of those checked."""
        if self.complete or not self.checked or self.checked >= contacts:
            return self.on_dnc
        return min(contacts, round(contacts * self.on_dnc / self.checked))


def check_dnc(records: Records, campaign: dict[str, Any], limit: int) -> DncCheck:
    """The campaign's contacts (those the list had at launch) checked against the DNC list in
    list order, as the dispatcher releases them: each one on it will be skipped, not texted."""
    check, cursor, read = DncCheck(), None, 0
    launched_at = campaign.get("scheduled_at", "~")
    while read < limit:
        asked = min(PREVIEW_CHUNK, limit - read)
        contacts = records.contacts_after(campaign["list_id"], cursor, asked)
        read += len(contacts)
        theirs = [c for c in contacts if (c.get("added_at") or "") <= launched_at]
        on_dnc = records.dnc_among(c["phone"] for c in theirs) if theirs else set()
        check.checked += len(theirs)
        check.on_dnc += len(on_dnc)
        if check.first_texted is None:
            check.first_texted = next((c for c in theirs if c["phone"] not in on_dnc), None)
        if len(contacts) < asked:
            check.complete = True
            break
        cursor = contacts[-1]["sk"]
    return check


def preview(records: Records, campaign_id: str) -> dict[str, Any]:
    """Each creative as the first contact to be texted would get it, what it costs as SMS, and
    the projected totals for the whole list: contacts on the DNC list now are left out of the
    messages, segments, cost and duration (the dispatcher skips them) and counted by reason."""
    campaign = get_campaign(records, campaign_id)
    brand = catalog.get_brand(records, campaign["brand_id"])
    dnc = check_dnc(records, campaign, PREVIEW_DNC_CHECKS)
    contact = dnc.first_texted or records.first_contact(campaign["list_id"]) or SAMPLE_CONTACT
    contact_list = records.get_entity("LIST", campaign["list_id"]) or {}
    total_contacts = int(campaign.get("total_contacts") or contact_list.get("contacts") or 0)
    excluded = {"dnc": dnc.excluded(total_contacts)}
    contacts = total_contacts - sum(excluded.values())
    total_weight = sum(int(c["weight"]) for c in campaign["creatives"])
    creatives, projected_segments = [], 0.0
    for creative in campaign["creatives"]:
        body = message_body(campaign, creative, brand, contact)
        facts = catalog.body_facts(body)
        share = int(creative["weight"]) / total_weight
        projected_segments += contacts * share * facts["segments"]
        creatives.append({"creative_id": creative["creative_id"], "name": creative["name"], "weight": creative["weight"],
                          "share_pct": round(100 * share, 1), "sample": body, **facts,
                          "variables": template_variables(creative["body"])})
    price = float(campaign.get("price_per_segment") or 0)
    validation = campaign.get("validation") or {}
    lookup_cost = contacts * float(validation.get("cost_per_lookup") or 0) if validation.get("enabled_for_campaigns") else 0.0
    numbers = catalog.pool_numbers(records, campaign["brand_id"], campaign["pool"])
    pool_mps = sum(float(n["mps"]) for n in numbers)
    rate = min(float(campaign["rate_per_second"]), pool_mps) if pool_mps else 0.0
    return {
        "campaign_id": campaign_id,
        "sample_contact": {"phone_masked": contact["phone"][:5] + "***" + contact["phone"][-4:],
                           "first_name": contact.get("first_name")},
        "creatives": creatives,
        "projected": {
            "contacts": total_contacts,
            "excluded_by_reason": excluded,
            # Past PREVIEW_DNC_CHECKS contacts, the count is their share scaled to the list.
            "excluded_estimated": not dnc.complete and dnc.checked < total_contacts,
            "messages": contacts,
            "segments": round(projected_segments),
            "cost": round(projected_segments * price + lookup_cost, 2),
            "sending_cost": round(projected_segments * price, 2),
            "validation_cost": round(lookup_cost, 2),
            "price_per_segment": price,
            "pool_numbers": len(numbers),
            "effective_rate_per_second": rate,
            "duration_minutes": round(contacts / rate / 60, 1) if rate else None,
        },
    }


def send_window_of(campaign: dict[str, Any]) -> SendWindow:
    """The campaign's own window, within each recipient's state rule (see domain/send_window)."""
    window = campaign.get("send_window") or {}
    default = campaign.get("send_window_default_rule")
    return SendWindow.parse(window.get("start", "08:00"), window.get("end", "21:00"),
                            DefaultWindowRule.model_validate(default).rule() if default else None)


def is_due(campaign: dict[str, Any], now: datetime) -> bool:
    start = campaign.get("start_at")
    return start is None or parse_iso(start) <= now + timedelta(seconds=1)
