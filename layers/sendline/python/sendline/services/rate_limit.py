"""300 requests a minute per integrator key: a fixed one-minute window counted in DynamoDB."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sendline.adapters.records import Records
from sendline.errors import RateLimited

REQUESTS_PER_MINUTE = 300


@dataclass(frozen=True)
class RateWindow:
    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_s)}


def enforce_rate_limit(records: Records, key_id: str, now: datetime, limit: int = REQUESTS_PER_MINUTE) -> RateWindow:
    epoch = now.timestamp()
    window_start = int(epoch // 60) * 60
    reset_s = max(1, math.ceil(window_start + 60 - epoch))
    count = records.count_request(key_id, window_start, expires_at=window_start + 120)
    if count > limit:
        raise RateLimited(retry_after_s=reset_s, limit=limit)
    return RateWindow(limit=limit, remaining=limit - count, reset_s=reset_s)
