"""pydantic's errors, as field-and-reason pairs an integrator can act on."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from sendline.errors import FieldProblem, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)

_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "extra_forbidden": "is not a known field",
    "string_too_short": "must not be empty",
    "float_type": "must be a number",
}


class FieldValueError(ValueError):
    """Raised by a model validator that checks several fields together, to name the field the
    caller should fix (pydantic would name the model, which reads as `body`)."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field


def problems_from(error: ValidationError) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"] if not str(part).startswith("function-")]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldValueError):
            parts.append(cause.field)
        field = ".".join(parts) or "body"
        # A union reports one error per branch; the first one says enough.
        field = field.replace(".str", "").replace(".int", "")
        if field in seen:
            continue
        seen.add(field)
        reason = _REASONS.get(item["type"])
        if reason is None:
            reason = str(item["msg"]).removeprefix("Value error, ")
            reason = reason[0].lower() + reason[1:] if reason else "is not valid"
        problems.append(FieldProblem(field, reason))
    return problems


def parse(model: type[Model], body: object) -> Model:
    """A request body as `model`, or ValidationFailed naming each bad field and why."""
    if not isinstance(body, dict):
        raise ValidationFailed(FieldProblem("body", "must be a JSON object"))
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(problems_from(exc)) from None
