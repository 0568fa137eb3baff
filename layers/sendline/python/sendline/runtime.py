"""The composition root: collaborators built once per execution environment, from settings.

Handlers ask here for the records, the queue and the carrier; tests call `reset()` after
changing the environment (or pass fakes to the services directly).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import TYPE_CHECKING

from sendline import config
from sendline.adapters import aws
from sendline.adapters.metrics import CloudWatchMetrics
from sendline.adapters.queue import DeadLetters, SendQueue, WorkQueues
from sendline.adapters.records import Records
from sendline.adapters.store import Store
from sendline.adapters.uploads import S3Uploads

DLQ_URL_SUFFIX = "_DLQ_URL"  # infra.spec.dlq_url_env
QUEUE_URL_SUFFIX = "_QUEUE_URL"  # infra.spec.queue_url_env
FUNCTION_NAMES_ENV = "FUNCTION_NAMES"  # infra.spec.FUNCTION_NAMES_ENV

if TYPE_CHECKING:  # httpx is imported only by the functions that call the carrier
    import httpx

    from sendline.adapters.phone_intel import ActivityScoreLookup, TwilioLineTypeLookup
    from sendline.adapters.twilio import TwilioMessages


@lru_cache(maxsize=1)
def records() -> Records:
    settings = config.store_settings()
    return Records(Store(aws.dynamodb(), settings.table_name), timezone=settings.report_timezone)


@lru_cache(maxsize=1)
def send_queue() -> SendQueue:
    return SendQueue(aws.sqs(), config.queue_settings().sends_queue_url)


@lru_cache(maxsize=1)
def dead_letters() -> DeadLetters:
    """The dead-letter queues this function was given (`<NAME>_DLQ_URL`); none for most."""
    return DeadLetters(aws.sqs(), _urls_by_queue(DLQ_URL_SUFFIX))


def _urls_by_queue(suffix: str) -> dict[str, str]:
    return {key[: -len(suffix)].lower(): value for key, value in os.environ.items()
            if key.endswith(suffix) and value}


@lru_cache(maxsize=1)
def work_queues() -> WorkQueues:
    """Every queue (`<NAME>_QUEUE_URL`) and dead-letter queue (`<NAME>_DLQ_URL`) this function
    was given, by name; at least one, or the function was deployed without what it operates."""
    queues, dlqs = _urls_by_queue(QUEUE_URL_SUFFIX), _urls_by_queue(DLQ_URL_SUFFIX)
    if not queues and not dlqs:
        raise config.MissingSetting(f"missing settings: <NAME>{QUEUE_URL_SUFFIX} and <NAME>{DLQ_URL_SUFFIX} "
                                    "for each queue")
    return WorkQueues(aws.sqs(), queues, dlqs)


@lru_cache(maxsize=1)
def function_names() -> dict[str, str]:
    """FUNCTION_NAMES: each function's name in the spec -> its deployed name (for its metrics)."""
    raw = os.environ.get(FUNCTION_NAMES_ENV, "")
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                              for k, v in names.items()):
        raise config.MissingSetting(f"missing or invalid settings: {FUNCTION_NAMES_ENV} "
                                    "(a JSON object of function name -> deployed name)")
    return names


@lru_cache(maxsize=1)
def metrics() -> CloudWatchMetrics:
    return CloudWatchMetrics(aws.cloudwatch())


@lru_cache(maxsize=1)
def uploads() -> S3Uploads:
    return S3Uploads(aws.s3(), config.uploads_settings().uploads_bucket)


@lru_cache(maxsize=1)
def twilio_credentials() -> tuple[str, str]:
    settings = config.twilio_settings()
    if settings.account_sid and settings.auth_token:
        return settings.account_sid, settings.auth_token
    # Deployed: the secret holds TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, cached by Powertools.
    from aws_lambda_powertools.utilities import parameters

    secret = json.loads(parameters.get_secret(settings.secret_arn, max_age=300))  # type: ignore[arg-type]
    return secret["TWILIO_ACCOUNT_SID"], secret["TWILIO_AUTH_TOKEN"]


@lru_cache(maxsize=1)
def carrier_http() -> httpx.Client:
    import httpx

    timeout = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=3.0)
    return httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=20))


@lru_cache(maxsize=1)
def twilio() -> TwilioMessages:
    from sendline.adapters.twilio import TwilioMessages

    settings = config.twilio_settings()
    account_sid, auth_token = twilio_credentials()
    callback = f"{config.api_settings().public_api_url.rstrip('/')}/webhooks/twilio/status"
    return TwilioMessages(carrier_http(), settings.api_base, account_sid, auth_token, callback)


def _phone_intel_key() -> str:
    settings = config.validation_settings()
    if settings.phone_intel_api_key:
        return settings.phone_intel_api_key
    from aws_lambda_powertools.utilities import parameters

    secret = json.loads(parameters.get_secret(config.twilio_settings().secret_arn, max_age=300))  # type: ignore[arg-type]
    return secret.get("PHONE_INTEL_API_KEY", "")


@lru_cache(maxsize=2)
def phone_lookups(provider: str) -> ActivityScoreLookup | TwilioLineTypeLookup:
    """The validation provider a campaign's settings name: the activity-score API, or Twilio
    Lookup's line type (with line status as a coarse activity signal)."""
    from sendline.adapters.phone_intel import ActivityScoreLookup, TwilioLineTypeLookup

    settings = config.validation_settings()
    if provider == "twilio_lookup":
        account_sid, auth_token = twilio_credentials()
        return TwilioLineTypeLookup(carrier_http(), settings.twilio_lookup_api_base, account_sid, auth_token,
                                    with_line_status=True)
    return ActivityScoreLookup(carrier_http(), settings.phone_intel_api_base, _phone_intel_key())


def reset() -> None:
    config.reset()
    aws.reset()
    for factory in (records, send_queue, dead_letters, work_queues, function_names, metrics, uploads,
                    twilio_credentials, carrier_http, twilio, phone_lookups):
        factory.cache_clear()
