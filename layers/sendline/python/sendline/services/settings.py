"""Account-wide settings operators change from the dashboard: phone validation, auto-pause and
prices. A campaign copies them when it is created, so changing a setting never changes a
campaign that is already out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.services.validation import parse


class ValidationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled_for_campaigns: StrictBool = False
    min_score: int = Field(default=50, ge=0, le=100)
    cost_per_lookup: float = Field(default=0.005, ge=0, le=10)
    provider: Literal["activity_score", "twilio_lookup"] = "activity_score"


class AutoPauseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # At least this many sends before the error rate means anything.
    min_sends: int = Field(default=500, ge=1, le=10_000_000)
    # Percent of sends that failed or went undelivered; 0 turns auto-pause off. 15-25 is the
    # range that catches a filtered creative or a burnt number before carriers block it.
    error_rate_threshold_pct: float = Field(default=20.0, ge=0, le=100)


class PriceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_per_segment: float = Field(default=0.0079, ge=0, le=10)


class AccountSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    validation: ValidationSettings = ValidationSettings()
    auto_pause: AutoPauseSettings = AutoPauseSettings()
    prices: PriceSettings = PriceSettings()


def current_settings(records: Records) -> AccountSettings:
    stored = records.get_settings()
    stored.pop("updated_at", None)
    return AccountSettings.model_validate(stored)


def update_settings(records: Records, body: object, now: datetime) -> dict[str, Any]:
    """Merge a partial change (`{"auto_pause": {"min_sends": 300}}`) into the settings."""
    merged = current_settings(records).model_dump()
    if isinstance(body, dict):
        for section, values in body.items():
            if isinstance(values, dict) and isinstance(merged.get(section), dict):
                merged[section] = {**merged[section], **values}
            else:
                merged[section] = values
    settings = parse(AccountSettings, merged if isinstance(body, dict) else body)
    stored = settings.model_dump()
    records.put_settings({**stored, "updated_at": iso(now)})
    return stored
