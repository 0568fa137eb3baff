"""Synthesizes the Sendline stack once per stage per test session; every infra test reads those.

Both go through `infra.app.synthesize`, what `make synth` runs, with cdk-nag's checks on: a
finding nobody accepted fails the synth, hence every test. The dependencies layer is a
placeholder folder, so synthesis never reaches a package registry (tests/infra/test_layer.py
builds the real one). dev gets a built dashboard (a temporary folder with an index.html) and an
extra CORS origin; prod gets neither, and an alarm e-mail address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from infra.stack import SendlineStack

# Node 20 is what this project's machines have; jsii's end-of-life banner for it would bury the
# output of a failing test. It is read when the jsii runtime starts, on the first CDK import,
# which is why CDK is imported inside the fixtures.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

DEV_EXTRA_ORIGIN = "http://localhost:5173"
PROD_ALARM_EMAIL = "oncall@example.com"


@dataclass
class SynthesizedStack:
    stack: SendlineStack
    template: dict[str, Any]
    outdir: str

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def logical_id(self, construct: Any) -> str:
        """The template's logical id of an L2 construct's underlying CloudFormation resource."""
        return self.stack.get_logical_id(construct.node.default_child)

    def props(self, construct: Any) -> dict[str, Any]:
        return self.resources[self.logical_id(construct)]["Properties"]

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


def _synthesize(tmp_path_factory: pytest.TempPathFactory, context: dict[str, str],
                dashboard: bool) -> SynthesizedStack:
    from infra.app import synthesize

    deps_layer_dir = tmp_path_factory.mktemp("deps-layer")
    (deps_layer_dir / "python").mkdir()
    (deps_layer_dir / "python" / "placeholder.txt").write_text("stands in for the real packages\n")
    dashboard_dir = None
    if dashboard:
        dashboard_dir = tmp_path_factory.mktemp("dashboard-dist")
        (dashboard_dir / "index.html").write_text("<!doctype html><title>Sendline</title>\n")
    outdir = str(tmp_path_factory.mktemp("cdk.out"))
    stack, assembly = synthesize(context=context, outdir=outdir, deps_layer_dir=deps_layer_dir,
                                 dashboard_dir=dashboard_dir)
    template = assembly.get_stack_by_name(stack.stack_name).template
    return SynthesizedStack(stack=stack, template=template, outdir=outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """The dev stage (the default), with the dashboard's files and an extra origin."""
    return _synthesize(tmp_path_factory, {"corsOrigins": DEV_EXTRA_ORIGIN}, dashboard=True)


@pytest.fixture(scope="session")
def synth_prod(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """`make synth STAGE=prod` without a built dashboard, with an alarm e-mail address."""
    return _synthesize(tmp_path_factory, {"stage": "prod", "alarmEmail": PROD_ALARM_EMAIL}, dashboard=False)


@pytest.fixture(scope="session", params=["dev", "prod"])
def each_stage(request: pytest.FixtureRequest) -> SynthesizedStack:
    return request.getfixturevalue("synth" if request.param == "dev" else "synth_prod")
