"""Domain errors. Handlers map them to HTTP in one place (`sendline.http`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


class SendlineError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, problems: list[FieldProblem] | FieldProblem | str):
        if isinstance(problems, str):
            problems = [FieldProblem("request", problems)]
        elif isinstance(problems, FieldProblem):
            problems = [problems]
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


class ValidationFailed(SendlineError):
    status_code = 422
    code = "validation_error"


class MalformedRequest(SendlineError):
    status_code = 400
    code = "malformed_request"


class PayloadTooLarge(SendlineError):
    status_code = 413
    code = "payload_too_large"


class NotFound(SendlineError):
    status_code = 404
    code = "not_found"


class Unauthorized(SendlineError):
    status_code = 401
    code = "unauthorized"


class Forbidden(SendlineError):
    status_code = 403
    code = "forbidden"


class Conflict(SendlineError):
    status_code = 409
    code = "conflict"


class RateLimited(SendlineError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: int, limit: int):
        super().__init__(FieldProblem("api_key", f"more than {limit} requests a minute"))
        self.retry_after_s = retry_after_s
        self.limit = limit


class ConditionFailed(Exception):
    """A conditional write lost: the item was not in the state the write required."""


class StoreThrottled(Exception):
    """DynamoDB throttled the request; the caller may retry later."""


class UploadMissing(Exception):
    """An uploaded file is not in the bucket (never uploaded, or expired)."""
