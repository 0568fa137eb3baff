"""us-east-1 on-demand list prices, and what a message's AWS requests cost at those prices.

The rates are the published list prices for US East (N. Virginia). PRICES_DATE is the date of
the latest change among them (DynamoDB on-demand throughput was halved on 2024-11-01); check
the AWS pricing pages before quoting a figure. Free tiers are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

PRICES_DATE = "2024-11-01"
REGION = "us-east-1"

USD_PER_MILLION = {
    # DynamoDB on-demand, Standard table class.
    "dynamodb_write_request_unit": 0.625,
    "dynamodb_read_request_unit": 0.125,
    # SQS standard queue: each API action is a request (per 64 KB of payload).
    "sqs_request": 0.40,
    # Lambda requests (invocations), any architecture.
    "lambda_request": 0.20,
    # API Gateway HTTP API, first 300 million requests a month (per 512 KB).
    "http_api_request": 1.00,
    # S3 Standard: PUT, COPY, POST and LIST requests; GET, SELECT and all other requests.
    "s3_put_request": 5.00,
    "s3_get_request": 0.40,
}
# Lambda compute, Arm (infra/stack.py deploys ARM_64), per GB-second.
LAMBDA_ARM_USD_PER_GB_S = 0.0000133334


def cost_per_thousand(per_message: Mapping[str, float]) -> dict[str, float]:
    """Dollars per 1,000 messages, by line item, from units per message.

    `per_message` keys: wru (table + index write request units), rru, sqs_requests,
    lambda_requests, http_api_requests; and, only where S3 is used, s3_put_requests and
    s3_get_requests (one "S3 requests" line).
    """
    lines = {
        "DynamoDB writes": per_message.get("wru", 0.0) * USD_PER_MILLION["dynamodb_write_request_unit"],
        "DynamoDB reads": per_message.get("rru", 0.0) * USD_PER_MILLION["dynamodb_read_request_unit"],
        "SQS requests": per_message.get("sqs_requests", 0.0) * USD_PER_MILLION["sqs_request"],
        "Lambda requests": per_message.get("lambda_requests", 0.0) * USD_PER_MILLION["lambda_request"],
        "API Gateway requests": per_message.get("http_api_requests", 0.0) * USD_PER_MILLION["http_api_request"],
    }
    if "s3_put_requests" in per_message or "s3_get_requests" in per_message:
        lines["S3 requests"] = (per_message.get("s3_put_requests", 0.0) * USD_PER_MILLION["s3_put_request"]
                                + per_message.get("s3_get_requests", 0.0) * USD_PER_MILLION["s3_get_request"])
    # units per message x 1,000 messages x price per 1e6 units
    lines = {name: value * 1000 / 1_000_000 for name, value in lines.items()}
    lines["total"] = sum(lines.values())
    return lines


def lambda_compute_per_thousand(invocations_per_message: float, memory_mb: int, billed_ms: float) -> float:
    """Dollars per 1,000 messages of Lambda duration, for an assumed billed time per invocation."""
    gb_seconds = invocations_per_message * 1000 * (memory_mb / 1024) * (billed_ms / 1000)
    return gb_seconds * LAMBDA_ARM_USD_PER_GB_S
