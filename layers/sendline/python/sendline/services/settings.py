"""Account-wide settings operators change from the dashboard: phone validation, auto-pause and
prices. A campaign copies them when it is created, so changing a setting never changes a
campaign that is already out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.send_window import Hours, StateRule, clock, quiet_hours
from sendline.services.validation import parse


class ValidationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled_for_campaigns: StrictBool = False
    min_score: StrictInt = Field(default=50, ge=0, le=100)
    cost_per_lookup: StrictFloat = Field(default=0.005, ge=0, le=10)
    provider: Literal["activity_score", "twilio_lookup"] = "activity_score"


class AutoPauseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # At least this many sends before the error rate means anything.
    min_sends: StrictInt = Field(default=500, ge=1, le=10_000_000)
    # Percent of sends that failed or went undelivered; 0 turns auto-pause off. 15-25 is the
    # range that catches a filtered creative or a burnt number before carriers block it.
    error_rate_threshold_pct: StrictFloat = Field(default=20.0, ge=0, le=100)


class PriceSettings(BaseModel):
    """What the provider charges per segment when it has not priced a text (yet): the text's
    cost until the provider's own price arrives."""

    model_config = ConfigDict(extra="forbid")
    price_per_segment: StrictFloat = Field(default=0.0079, ge=0, le=10)


Rate = Annotated[StrictFloat, Field(ge=0, le=10)]


class BillingSettings(BaseModel):
    """What the operator charges for texts, and what carriers add on top of the provider.

    Revenue is a text's segments at its brand's rate (`brand_rates_per_segment`, by brand id)
    or else `rate_per_segment`; carrier fees are its segments at its carrier's surcharge
    (`carrier_fees_per_segment`, by carrier name as lookups give it: a name matches a carrier
    whose name is it or contains it, ignoring case, the longest match winning, so "T-Mobile"
    covers "T-Mobile USA, Inc."). Both are taken at the rates in force when the text is sent.
    `low_balance_alert`: the balance under which the Command Center raises an alert."""

    model_config = ConfigDict(extra="forbid")
    rate_per_segment: Rate = 0.0
    brand_rates_per_segment: dict[Annotated[str, Field(min_length=1, max_length=100)], Rate] = Field(
        default_factory=dict, max_length=1000)
    carrier_fees_per_segment: dict[Annotated[str, Field(min_length=1, max_length=60)], Rate] = Field(
        default_factory=dict, max_length=200)
    low_balance_alert: StrictFloat = Field(default=50.0, ge=0, le=10_000_000)

    def rate_for(self, brand_id: str | None) -> float:
        return self.brand_rates_per_segment.get(brand_id or "", self.rate_per_segment)

    def carrier_fee_for(self, carrier: str | None) -> float:
        name = (carrier or "").casefold()
        if not name:
            return 0.0
        matches = [(len(key), fee) for key, fee in self.carrier_fees_per_segment.items()
                   if key.casefold() == name or key.casefold() in name]
        return max(matches)[1] if matches else 0.0


class InboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Twilio's default STOP filtering confirms STOP and START itself and blocks the sender, so
    # Sendline stays silent on those keywords; turn off where the provider does not.
    carrier_handles_standard_keywords: StrictBool = True


CarrierErrorCode = Annotated[StrictInt, Field(ge=10000, le=99999)]


class AutoDncSettings(BaseModel):
    """A number whose texts keep failing with one of `codes` goes on the DNC list (source
    `auto_dnc`) at its `failures_before_dnc`-th failed message, or at its first with one of
    `immediate_codes`; a code missing from `codes` never counts."""

    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = True
    # 30007 carrier violation, 21610 opted out, 21211 invalid, 21614 not mobile, 30005 unknown
    # handset, 30006 landline.
    codes: list[CarrierErrorCode] = Field(default_factory=lambda: [30007, 21610, 21211, 21614, 30005, 30006],
                                          max_length=100)
    failures_before_dnc: StrictInt = Field(default=2, ge=1, le=100)
    # The recipient already told the carrier to stop: texting it again only fails again.
    immediate_codes: list[CarrierErrorCode] = Field(default_factory=lambda: [21610], max_length=100)


HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class DefaultWindowRule(BaseModel):
    """The hours a number whose state its area code does not tell (toll-free, non-geographic,
    Canadian) may be texted, in its local time. Always within the federal 08:00-21:00."""

    model_config = ConfigDict(extra="forbid")
    start: StrictStr = Field(default="09:00", pattern=HHMM)
    end: StrictStr = Field(default="20:00", pattern=HHMM)
    sundays: StrictBool = False

    @model_validator(mode="after")
    def _within_federal(self) -> DefaultWindowRule:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        federal = quiet_hours().federal.on(0)
        assert federal is not None
        if clock(self.start) < federal.start or clock(self.end) > federal.end:
            raise ValueError(f"must be within the federal window, {federal.start:%H:%M}-{federal.end:%H:%M}")
        return self

    def rule(self) -> StateRule:
        return StateRule.daily(Hours(clock(self.start), clock(self.end)), sundays=self.sundays)


class SendWindowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_rule: DefaultWindowRule = DefaultWindowRule()


class AccountSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inbound: InboundSettings = InboundSettings()
    validation: ValidationSettings = ValidationSettings()
    auto_pause: AutoPauseSettings = AutoPauseSettings()
    prices: PriceSettings = PriceSettings()
    billing: BillingSettings = BillingSettings()
    send_windows: SendWindowSettings = SendWindowSettings()
    auto_dnc: AutoDncSettings = AutoDncSettings()


def current_settings(records: Records) -> AccountSettings:
    stored = records.get_settings()
    stored.pop("updated_at", None)
    return AccountSettings.model_validate(stored)


SETTINGS_CACHE_S = 30.0


def recent_settings(records: Records) -> AccountSettings:
    """The settings as read at most half a minute ago in this execution environment: for the
    send path, which needs the billing rates for every text."""
    return records.remembered("settings", SETTINGS_CACHE_S, lambda: current_settings(records))


def update_settings(records: Records, body: object, now: datetime) -> dict[str, Any]:
    """Merge a partial change (`{"auto_pause": {"min_sends": 300}}`) into the settings."""
    merged = current_settings(records).model_dump()
    if isinstance(body, dict):
        merged = _merged(merged, body)
    settings = parse(AccountSettings, merged if isinstance(body, dict) else body)
    stored = settings.model_dump()
    records.put_settings({**stored, "updated_at": iso(now)})
    return stored


def _merged(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """`change` over `current`, section by section and inside nested sections too
    (`{"send_windows": {"default_rule": {"end": "19:00"}}}` keeps the rule's start)."""
    merged = dict(current)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(current.get(key), dict):
            merged[key] = _merged(current[key], value)
        else:
            merged[key] = value
    return merged
