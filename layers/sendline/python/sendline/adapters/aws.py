"""boto3 clients, created once per execution environment. Tests call `reset()` to swap them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5)


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    return boto3.client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def sqs() -> Any:
    return boto3.client("sqs", config=_CONFIG)


@lru_cache(maxsize=1)
def s3() -> Any:
    # Presigned URLs are signed with SigV4 so they work in every region.
    config = _CONFIG.merge(Config(signature_version="s3v4", read_timeout=30))
    return boto3.client("s3", config=config)


@lru_cache(maxsize=1)
def cloudwatch() -> Any:
    # Locally AWS_ENDPOINT_URL points every client, this one included, at moto.
    return boto3.client("cloudwatch", config=_CONFIG)


def reset() -> None:
    dynamodb.cache_clear()
    sqs.cache_clear()
    s3.cache_clear()
    cloudwatch.cache_clear()
