"""What campaigns are made of: brands, their sending numbers, and saved message templates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    field_validator,
    model_validator,
)

from sendline.adapters.records import Records
from sendline.domain.clock import iso
from sendline.domain.encoding import analyse, smart_encode
from sendline.domain.ids import new_id
from sendline.domain.keywords import HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS, normalise_reply
from sendline.domain.phones import PhoneRejected, normalise_phone
from sendline.domain.templates import placeholder_problem, template_variables
from sendline.errors import ConditionFailed, Conflict, FieldProblem, NotFound, ValidationFailed
from sendline.services.validation import parse

MAX_BODY = 1600
RESERVED_KEYWORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS
POOL_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


def _well_formed(body: str) -> str:
    problem = placeholder_problem(body)
    if problem:
        raise ValueError(problem)
    return body


# A text as operators save it (a template, a campaign creative, a flow's message, a quick send):
# each `{...}` in it must be a variable the renderer fills.
MessageBody = Annotated[StrictStr, Field(min_length=1, max_length=MAX_BODY), AfterValidator(_well_formed)]


class NumberType(StrEnum):
    LONG_CODE = "long_code"  # 10DLC
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"


# Messages per second a sender of each type can take before the carrier queues or filters
# (providers-and-rules §1.6 and §6.4): a US long code has historically taken 1 segment a second,
# verified toll-free 3, a short code 100. Operators raise a number's limit to what their 10DLC
# trust score allows.
DEFAULT_MPS = {NumberType.LONG_CODE: 1.0, NumberType.TOLL_FREE: 3.0, NumberType.SHORT_CODE: 100.0}
NUMBER_STATES = ("active", "rested")


def _e164(value: str) -> str:
    try:
        return normalise_phone(value).e164
    except PhoneRejected as exc:
        raise ValueError(exc.reason) from None


def _short_code_or_e164(value: str) -> str:
    digits = value.strip()
    if digits.isdigit() and 5 <= len(digits) <= 6:
        return digits
    return _e164(value)


# -- brands -------------------------------------------------------------------------------------
class BrandKeyword(BaseModel):
    """A word recipients text to a brand's numbers, and what it does: tag the sender's leads,
    reply, or forward the sender as a new lead of a flow (each may also reply)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    keyword: StrictStr = Field(min_length=1, max_length=40)
    action: Literal["tag", "auto_reply", "forward_lead"]
    reply: StrictStr | None = Field(default=None, min_length=1, max_length=320)
    tag: StrictStr | None = Field(default=None, min_length=1, max_length=40)
    flow_id: StrictStr | None = None

    @field_validator("keyword")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        word = normalise_reply(value)
        if not word:
            raise ValueError("must contain letters or digits")
        if word in RESERVED_KEYWORDS:
            raise ValueError(f"is reserved for opt-out, opt-in and help: {word}")
        return word

    @model_validator(mode="after")
    def _what_the_action_needs(self) -> BrandKeyword:
        needs = {"tag": "tag", "auto_reply": "reply", "forward_lead": "flow_id"}[self.action]
        if getattr(self, needs) is None:
            raise ValueError(f"the {self.action} action needs {needs}")
        return self


class BrandDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: StrictStr = Field(min_length=1, max_length=120)
    call_number: StrictStr | None = None
    help_text: StrictStr | None = Field(default=None, max_length=320)
    opt_out_footer: StrictStr | None = Field(default="Reply STOP to opt out", max_length=120)
    default_pool: StrictStr = Field(default="default", pattern=POOL_NAME)
    keywords: list[BrandKeyword] = Field(default_factory=list, max_length=50)

    _call = field_validator("call_number")(lambda v: v if v is None else _e164(v))


class BrandChanges(BrandDraft):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=120)  # type: ignore[assignment]
    default_pool: StrictStr | None = Field(default=None, pattern=POOL_NAME)  # type: ignore[assignment]
    keywords: list[BrandKeyword] | None = Field(default=None, max_length=50)  # type: ignore[assignment]


def _brand_fields(draft: BaseModel) -> dict[str, Any]:
    fields = draft.model_dump(exclude_unset=True)
    if "call_number" in fields:
        number = fields["call_number"]
        fields["call_number_display"] = normalise_phone(number).national if number else None
    return fields


def create_brand(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(BrandDraft, body)
    brand_id = new_id("br")
    brand = {"brand_id": brand_id, **draft.model_dump(), "created_at": iso(now), "updated_at": iso(now)}
    brand.update(_brand_fields(draft))
    records.create_entity("BRAND", brand_id, brand, listing=("BRANDS", f"{iso(now)}#{brand_id}"))
    return brand


def get_brand(records: Records, brand_id: str, field: str = "brand_id") -> dict[str, Any]:
    brand = records.get_entity("BRAND", brand_id)
    if not brand:
        raise NotFound(FieldProblem(field, "no brand with this id"))
    return brand


def update_brand(records: Records, brand_id: str, body: object, now: datetime) -> dict[str, Any]:
    changes = _brand_fields(parse(BrandChanges, body))
    try:
        return records.update_entity("BRAND", brand_id, set_fields={**changes, "updated_at": iso(now)})
    except KeyError:
        raise NotFound(FieldProblem("brand_id", "no brand with this id")) from None


def delete_brand(records: Records, brand_id: str) -> dict[str, Any]:
    get_brand(records, brand_id)
    if records.list_entities("NUMBERS", prefix=f"{brand_id}#", limit=1):
        raise Conflict(FieldProblem("brand_id", "the brand still has sending numbers; move or delete them first"))
    records.delete_entity("BRAND", brand_id)
    return {"deleted": True, "brand_id": brand_id}


def list_brands(records: Records) -> list[dict[str, Any]]:
    return records.list_entities("BRANDS")


# -- sending numbers ---------------------------------------------------------------------------
class NumberDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    number: StrictStr
    brand_id: StrictStr = Field(min_length=1, max_length=100)
    type: NumberType = NumberType.LONG_CODE
    pool: StrictStr | None = Field(default=None, pattern=POOL_NAME)
    mps: StrictFloat | None = Field(default=None, gt=0, le=1000)
    status: StrictStr = Field(default="active", pattern="^(active|rested)$")

    _number = field_validator("number")(lambda v: _short_code_or_e164(v))


class NumberChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    pool: StrictStr | None = Field(default=None, pattern=POOL_NAME)
    mps: StrictFloat | None = Field(default=None, gt=0, le=1000)
    status: StrictStr | None = Field(default=None, pattern="^(active|rested)$")
    type: NumberType | None = None


def _listing(number: dict[str, Any]) -> dict[str, str]:
    return {"gsi1pk": "NUMBERS", "gsi1sk": f"{number['brand_id']}#{number['pool']}#{number['number']}"}


def _number_view(number: dict[str, Any]) -> dict[str, Any]:
    """A sending number as the API shows it; `mps` is a float however it was stored (the table
    gives back a whole number as an int)."""
    return {**number, "mps": float(number["mps"])}


def add_number(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(NumberDraft, body)
    brand = get_brand(records, draft.brand_id, field="brand_id")
    number = {
        "number": draft.number,
        "brand_id": draft.brand_id,
        "type": draft.type.value,
        "pool": draft.pool or brand["default_pool"],
        "mps": draft.mps or DEFAULT_MPS[draft.type],
        "status": draft.status,
        "created_at": iso(now),
        "updated_at": iso(now),
    }
    try:
        records.create_entity("NUMBER", draft.number, number,
                              listing=(_listing(number)["gsi1pk"], _listing(number)["gsi1sk"]))
    except ConditionFailed:
        raise Conflict(FieldProblem("number", "this number is already registered")) from None
    return _number_view(number)


def get_number(records: Records, number: str, field: str = "number") -> dict[str, Any]:
    try:
        key = _short_code_or_e164(number)
    except ValueError:
        raise NotFound(FieldProblem(field, "no sending number like this")) from None
    found = records.get_entity("NUMBER", key)
    if not found:
        raise NotFound(FieldProblem(field, "no sending number like this"))
    return _number_view(found)


def update_number(records: Records, number: str, body: object, now: datetime) -> dict[str, Any]:
    changes = parse(NumberChanges, body).model_dump(exclude_unset=True)
    current = get_number(records, number)
    merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
    if "type" in changes and "mps" not in changes and changes["type"]:
        merged["mps"] = DEFAULT_MPS[NumberType(changes["type"])]
    fields = {k: merged[k] for k in ("pool", "mps", "status", "type")}
    return _number_view(records.update_entity("NUMBER", current["number"],
                                              set_fields={**fields, **_listing(merged), "updated_at": iso(now)}))


def delete_number(records: Records, number: str) -> dict[str, Any]:
    current = get_number(records, number)
    records.delete_entity("NUMBER", current["number"])
    return {"deleted": True, "number": current["number"]}


def list_numbers(records: Records, brand_id: str | None = None, pool: str | None = None) -> list[dict[str, Any]]:
    prefix = None
    if brand_id:
        prefix = f"{brand_id}#" + (f"{pool}#" if pool else "")
    return [_number_view(n) for n in records.list_entities("NUMBERS", prefix=prefix, newest_first=False, limit=1000)]


def pool_numbers(records: Records, brand_id: str, pool: str) -> list[dict[str, Any]]:
    """The active numbers a campaign of this brand and pool sends from, in a stable order."""
    return [n for n in list_numbers(records, brand_id, pool) if n["status"] == "active"]


# -- templates ---------------------------------------------------------------------------------
class TemplateDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(min_length=1, max_length=120)
    body: MessageBody
    brand_id: StrictStr | None = None


class TemplateChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = Field(default=None, min_length=1, max_length=120)
    body: MessageBody | None = None
    archived: StrictBool | None = None


def body_facts(body: str) -> dict[str, Any]:
    """Characters, encoding and segments of a body, and what smart encoding would make of it."""
    report = analyse(body)
    smart = smart_encode(body)
    smart_report = analyse(smart)
    return {
        "characters": report.characters,
        "encoding": report.encoding,
        "segments": report.segments,
        "ucs2_characters": list(report.ucs2_characters),
        "smart_encoded": {"body": smart, "encoding": smart_report.encoding, "segments": smart_report.segments,
                          "characters": smart_report.characters} if smart != body else None,
    }


TEMPLATE_FIELDS = ("template_id", "name", "body", "brand_id", "archived", "created_at", "updated_at")


def _template_view(template: dict[str, Any]) -> dict[str, Any]:
    """A template as create, get, update and list all show it: the same fields every time (the
    table keeps no empty `brand_id`), with what its body costs as SMS."""
    return {**{f: template.get(f) for f in TEMPLATE_FIELDS}, **body_facts(template["body"]),
            "variables": template_variables(template["body"])}


def create_template(records: Records, body: object, now: datetime) -> dict[str, Any]:
    draft = parse(TemplateDraft, body)
    if draft.brand_id:
        get_brand(records, draft.brand_id)
    template_id = new_id("tp")
    template = {"template_id": template_id, **draft.model_dump(), "archived": False,
                "created_at": iso(now), "updated_at": iso(now)}
    records.create_entity("TEMPLATE", template_id, template, listing=("TEMPLATES", f"{iso(now)}#{template_id}"))
    return _template_view(template)


def get_template(records: Records, template_id: str, field: str = "template_id") -> dict[str, Any]:
    template = records.get_entity("TEMPLATE", template_id)
    if not template:
        raise NotFound(FieldProblem(field, "no template with this id"))
    return _template_view(template)


def update_template(records: Records, template_id: str, body: object, now: datetime) -> dict[str, Any]:
    # A null leaves the field as it is: a template always keeps a name and a body.
    changes = {k: v for k, v in parse(TemplateChanges, body).model_dump(exclude_unset=True).items() if v is not None}
    try:
        template = records.update_entity("TEMPLATE", template_id, set_fields={**changes, "updated_at": iso(now)})
    except KeyError:
        raise NotFound(FieldProblem("template_id", "no template with this id")) from None
    return _template_view(template)


def list_templates(records: Records, include_archived: bool = False) -> list[dict[str, Any]]:
    return [_template_view(t) for t in records.list_entities("TEMPLATES")
            if include_archived or not t.get("archived")]


def require(condition: bool, field: str, reason: str) -> None:
    if not condition:
        raise ValidationFailed(FieldProblem(field, reason))
