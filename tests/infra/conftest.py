"""Synthesizes the Sendline stack once per test session; every infra test reads that template.

The dependencies layer is a placeholder folder, so synthesis never reaches a package registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from infra.stack import SendlineStack

# Node 20 is what this project's machines have; jsii's end-of-life banner for it would bury the
# output of a failing test. It is read when the jsii runtime starts, on the first CDK import,
# which is why CDK is imported inside the fixture.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass
class SynthesizedStack:
    stack: SendlineStack
    template: Template
    resources: dict[str, dict[str, Any]]

    def logical_id(self, construct: Any) -> str:
        """The template's logical id of an L2 construct's underlying CloudFormation resource."""
        return self.stack.get_logical_id(construct.node.default_child)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type
        }

    def function_id(self, name: str) -> str:
        return self.logical_id(self.stack.functions[name])

    def function_props(self, name: str) -> dict[str, Any]:
        return self.resources[self.function_id(name)]["Properties"]

    def role_statements(self, function_name: str) -> list[dict[str, Any]]:
        """Every IAM statement attached to the function's execution role by the stack."""
        role_arn = self.function_props(function_name)["Role"]
        role_id = role_arn["Fn::GetAtt"][0]
        statements: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            props = policy["Properties"]
            if {"Ref": role_id} in props["Roles"]:
                statements.extend(props["PolicyDocument"]["Statement"])
        return statements


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import SendlineStack

    deps_layer_dir = tmp_path_factory.mktemp("deps-layer")
    (deps_layer_dir / "python").mkdir()
    (deps_layer_dir / "python" / "placeholder.txt").write_text("stands in for the real packages\n")

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    stack = SendlineStack(app, "Sendline", deps_layer_dir=deps_layer_dir)
    template = Template.from_stack(stack)
    return SynthesizedStack(
        stack=stack, template=template, resources=template.to_json()["Resources"]
    )
