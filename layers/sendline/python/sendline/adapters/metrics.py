"""CloudWatch metrics the AWS services publish about our functions and queues, read with
GetMetricData (as many queries per call as CloudWatch takes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit


class MetricsUnavailable(Exception):
    """CloudWatch could not be read (no permission, throttled, unreachable)."""


@dataclass(frozen=True)
class MetricQuery:
    """One metric of one resource: e.g. AWS/Lambda Errors of FunctionName=sendline-send_worker,
    summed (`Sum`) or at its highest (`Maximum`) in each period."""

    namespace: str
    metric: str
    dimension: str
    value: str
    stat: str


class CloudWatchMetrics:
    def __init__(self, client: Any):
        self._cloudwatch = client

    def datapoints(self, queries: Sequence[MetricQuery], start: datetime, end: datetime,
                   period_s: int = 60) -> dict[MetricQuery, list[tuple[datetime, float]]]:
        """Each query's datapoints from `start` to `end`, one per `period_s`, newest first."""
        found: dict[MetricQuery, list[tuple[datetime, float]]] = {q: [] for q in queries}
        for first in range(0, len(queries), MAX_QUERIES_PER_CALL):
            chunk = list(queries[first:first + MAX_QUERIES_PER_CALL])
            by_id = {f"q{i}": q for i, q in enumerate(chunk)}
            request: dict[str, Any] = {
                "MetricDataQueries": [
                    {"Id": query_id, "ReturnData": True, "MetricStat": {
                        "Metric": {"Namespace": q.namespace, "MetricName": q.metric,
                                   "Dimensions": [{"Name": q.dimension, "Value": q.value}]},
                        "Period": period_s, "Stat": q.stat}}
                    for query_id, q in by_id.items()],
                "StartTime": start, "EndTime": end, "ScanBy": "TimestampDescending",
            }
            while True:
                try:
                    response = self._cloudwatch.get_metric_data(**request)
                except (ClientError, BotoCoreError) as exc:
                    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
                    raise MetricsUnavailable(code) from exc
                for result in response.get("MetricDataResults", []):
                    query = by_id.get(result["Id"])
                    if query is not None:
                        found[query] += list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
                if not response.get("NextToken"):
                    break
                request["NextToken"] = response["NextToken"]
        for points in found.values():
            points.sort(key=lambda point: point[0], reverse=True)
        return found
