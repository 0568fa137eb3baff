"""Settings read from the environment once per execution environment and validated then.

A missing resource name fails at cold start with the variable's name, never falls back.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, ValidationError


class MissingSetting(RuntimeError):
    pass


def _load(model: type[BaseModel], names: dict[str, str]) -> BaseModel:
    raw = {field: os.environ.get(env) for field, env in names.items()}
    raw = {k: v for k, v in raw.items() if v not in (None, "")}
    try:
        return model(**raw)
    except ValidationError as exc:
        missing = [names[str(e["loc"][0])] for e in exc.errors() if e["type"] == "missing"]
        raise MissingSetting(f"missing or invalid settings: {', '.join(missing) or exc}") from exc


class StoreSettings(BaseModel):
    table_name: str
    report_timezone: str = "UTC"  # the day and hour counters are bucketed in


class QueueSettings(BaseModel):
    sends_queue_url: str


class ApiSettings(BaseModel):
    """Who may call the HTTP functions. Operators sign in with Cognito on AWS: the stack sets
    COGNITO_ISSUER (https://cognito-idp.<region>.amazonaws.com/<pool id>) and COGNITO_CLIENT_ID
    together, and the routes operators share with integrators verify the token in the function
    (adapters/cognito.py). The static operator token (its SHA-256 in OPERATOR_TOKEN_SHA256) is
    the local stack's login; unset, it is off."""

    public_api_url: str = Field(pattern=r"^https?://")
    operator_token_sha256: str | None = None
    # The exact `iss` of the pool's tokens: https, no trailing slash.
    cognito_issuer: str | None = Field(default=None, pattern=r"^https://[^/\s]+(/[^/\s]+)+$")
    cognito_client_id: str | None = Field(default=None, min_length=1, max_length=128)


class TwilioSettings(BaseModel):
    api_base: str = "https://api.twilio.com"
    account_sid: str | None = None
    auth_token: str | None = None
    secret_arn: str | None = None
    status_callback_url: str | None = None


class UploadsSettings(BaseModel):
    uploads_bucket: str


class ValidationProviderSettings(BaseModel):
    """Where phone lookups go. The activity-score key comes from the provider secret when
    deployed (key PHONE_INTEL_API_KEY) or from the environment locally."""

    phone_intel_api_base: str = "https://api.trestleiq.com"
    phone_intel_api_key: str | None = None
    twilio_lookup_api_base: str = "https://lookups.twilio.com"


@lru_cache(maxsize=1)
def uploads_settings() -> UploadsSettings:
    return _load(UploadsSettings, {"uploads_bucket": "UPLOADS_BUCKET"})  # type: ignore[return-value]


@lru_cache(maxsize=1)
def validation_settings() -> ValidationProviderSettings:
    return _load(ValidationProviderSettings, {  # type: ignore[return-value]
        "phone_intel_api_base": "PHONE_INTEL_API_BASE",
        "phone_intel_api_key": "PHONE_INTEL_API_KEY",
        "twilio_lookup_api_base": "TWILIO_LOOKUP_API_BASE",
    })


@lru_cache(maxsize=1)
def store_settings() -> StoreSettings:
    return _load(StoreSettings, {"table_name": "TABLE_NAME", "report_timezone": "REPORT_TIMEZONE"})  # type: ignore[return-value]


@lru_cache(maxsize=1)
def queue_settings() -> QueueSettings:
    return _load(QueueSettings, {"sends_queue_url": "SENDS_QUEUE_URL"})  # type: ignore[return-value]


@lru_cache(maxsize=1)
def api_settings() -> ApiSettings:
    settings: ApiSettings = _load(  # type: ignore[assignment]
        ApiSettings,
        {
            "public_api_url": "PUBLIC_API_URL",
            "operator_token_sha256": "OPERATOR_TOKEN_SHA256",
            "cognito_issuer": "COGNITO_ISSUER",
            "cognito_client_id": "COGNITO_CLIENT_ID",
        },
    )
    # One without the other would check tokens against no client, or no pool.
    if bool(settings.cognito_issuer) != bool(settings.cognito_client_id):
        missing = "COGNITO_CLIENT_ID" if settings.cognito_issuer else "COGNITO_ISSUER"
        raise MissingSetting(f"missing settings: {missing} (COGNITO_ISSUER and COGNITO_CLIENT_ID go together)")
    return settings


@lru_cache(maxsize=1)
def twilio_settings() -> TwilioSettings:
    settings: TwilioSettings = _load(  # type: ignore[assignment]
        TwilioSettings,
        {
            "api_base": "TWILIO_API_BASE",
            "account_sid": "TWILIO_ACCOUNT_SID",
            "auth_token": "TWILIO_AUTH_TOKEN",
            "secret_arn": "TWILIO_SECRET_ARN",
        },
    )
    if not (settings.account_sid and settings.auth_token) and not settings.secret_arn:
        raise MissingSetting("missing settings: TWILIO_SECRET_ARN (or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)")
    return settings


def validate_at_cold_start(*settings: object) -> None:
    """Read each settings factory once at import, so a missing variable fails the cold start
    with its name instead of the first request that needs it."""
    for factory in settings:
        factory()  # type: ignore[operator]


def reset() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    for factory in (store_settings, queue_settings, api_settings, twilio_settings, uploads_settings,
                    validation_settings):
        factory.cache_clear()
