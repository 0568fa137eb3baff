"""Reading a synthesized CloudFormation template: references and IAM statements."""

from __future__ import annotations

from typing import Any

# What a private bucket encrypted with S3-managed keys says in its properties.
BLOCK_ALL_PUBLIC_ACCESS = {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                           "RestrictPublicBuckets": True}
S3_MANAGED_ENCRYPTION = [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def join(*parts: Any) -> dict[str, list[Any]]:
    return {"Fn::Join": ["", list(parts)]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], action: str, resource: Any) -> bool:
    """Whether an Allow statement grants `action` on exactly `resource` (among its resources)."""
    return any(
        statement["Effect"] == "Allow"
        and action in as_list(statement["Action"])
        and resource in as_list(statement["Resource"])
        for statement in statements
    )


def actions(statements: list[dict[str, Any]]) -> set[str]:
    """Every action some Allow statement grants, on whatever resource."""
    return {action for s in statements if s["Effect"] == "Allow" for action in as_list(s["Action"])}


def resources_of(statements: list[dict[str, Any]], action: str) -> list[Any]:
    """Every resource an Allow statement grants `action` on."""
    found: list[Any] = []
    for statement in statements:
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"]):
            found.extend(as_list(statement["Resource"]))
    return found
