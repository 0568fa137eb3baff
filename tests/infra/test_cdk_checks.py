"""Outside judges of the synthesized stack: cdk-nag's AWS Solutions rules and cfn-lint.

Every finding the stack keeps is accepted on its construct with a specific reason (infra.nag);
cfn-lint must find no error, and only the warnings listed here, each with why it stays.
"""

from __future__ import annotations

import json
import re

import pytest

from infra import nag
from tests.infra.conftest import DEV_EXTRA_ORIGIN

# cfn-lint warnings the template keeps, and why.
IGNORED_CFN_LINT_WARNINGS = {
    "W3005": (
        "CDK writes DependsOn from each function to its role and the role's default policy, so a "
        "function exists only once its permissions do; the role's entry duplicates the GetAtt "
        "ordering, harmless and not ours to remove."
    ),
}
CFN_LINT_REGIONS = ["us-east-1", "eu-west-1"]

# Reasons no reviewer would accept as such.
GENERIC_REASONS = {"false positive", "not needed", "not applicable", "n/a", "ok", "accepted", "suppressed",
                   "todo", "fine", "by design", "not required", "ignore", "wontfix"}
MIN_REASON_LENGTH = 60

# The rules a finding may be accepted for at all; a new kind of acceptance is a decision to make
# on purpose, here.
ACCEPTED_RULES = {"L1", "IAM4", "IAM5", "APIG4", "SMG4", "CFR1", "CFR2", "CFR4"}


def violations(stack) -> list[str]:
    report = nag.checks().validate_scope(stack)
    return [f"{v.severity} {v.rule_name}: {r.construct_path}"
            for v in report.violations for r in v.violating_resources]


def test_aws_solutions_checks_find_nothing_unaccepted(each_stage):
    assert violations(each_stage.stack) == []


def test_every_acceptance_answers_a_finding_the_checks_report_without_it(tmp_path):
    # Given the dev stack built again without its acceptances
    from unittest import mock

    from infra.app import build_stack, create_app

    deps = tmp_path / "deps"
    (deps / "python").mkdir(parents=True)
    dashboard = tmp_path / "dist"
    dashboard.mkdir()
    (dashboard / "index.html").write_text("<!doctype html>\n")
    app = create_app(context={"corsOrigins": DEV_EXTRA_ORIGIN}, checks=False)
    with mock.patch("infra.nag.accept_findings"):
        bare = build_stack(app, deps_layer_dir=deps, dashboard_dir=dashboard)
    app2 = create_app(context={"corsOrigins": DEV_EXTRA_ORIGIN}, checks=False)
    accepted_stack = build_stack(app2, deps_layer_dir=deps, dashboard_dir=dashboard)

    # When the checks run on it
    found = [(v.rule_name, r.construct_path) for v in nag.checks().validate_scope(bare).violations
             for r in v.violating_resources]

    # Then each acceptance covers at least one finding, and each finding is covered
    acceptances = [(a.rule, a.path) for a in nag.acknowledgments(accepted_stack)]

    def covers(acceptance, finding):
        return acceptance[0] == finding[0] and (finding[1] + "/").startswith(acceptance[1] + "/")

    assert [a for a in acceptances if not any(covers(a, f) for f in found)] == []
    assert [f for f in found if not any(covers(a, f) for a in acceptances)] == []


def test_every_acceptance_names_its_rule_and_a_specific_reason(each_stage):
    accepted = nag.acknowledgments(each_stage.stack)
    assert accepted, "the stack accepts no finding at all: infra.nag.accept_findings did not run"
    for acceptance in accepted:
        match = re.fullmatch(r"AwsSolutions-([A-Z]+[0-9]+)(\[.+\])?", acceptance.rule)
        assert match, acceptance
        assert match.group(1) in ACCEPTED_RULES, acceptance
        reason = acceptance.reason.strip()
        assert len(reason) >= MIN_REASON_LENGTH, acceptance
        assert reason.lower().rstrip(".") not in GENERIC_REASONS, acceptance


def test_acceptances_are_made_on_the_constructs_they_concern_never_on_the_whole_stack(each_stage):
    stack_path = each_stage.stack.node.path
    paths = {a.path for a in nag.acknowledgments(each_stage.stack)}
    assert stack_path not in paths
    assert each_stage.stack.node.scope.node.path not in paths


def test_the_accepted_rules_are_exactly_these(synth):
    by_rule: dict[str, set[str]] = {}
    for acceptance in nag.acknowledgments(synth.stack):
        by_rule.setdefault(acceptance.rule.split("[")[0], set()).add(acceptance.reason)
    assert sorted(by_rule) == sorted(f"AwsSolutions-{r}" for r in ACCEPTED_RULES)
    # Routes the gateway leaves open: one reason per kind of check the function makes.
    assert by_rule["AwsSolutions-APIG4"] == set(nag.ROUTE_AUTH_IN_CODE.values())


def cfn_lint(template: dict) -> list:
    from cfnlint.api import lint

    return lint(json.dumps(template), regions=CFN_LINT_REGIONS)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_no_error_and_only_known_warnings(request, stage):
    synth = request.getfixturevalue("synth" if stage == "dev" else "synth_prod")
    matches = cfn_lint(synth.template)
    for match in matches:
        print(f"cfn-lint {stage}: {match}")
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    unknown = sorted({m.rule.id for m in matches if not m.rule.id.startswith("E")} - IGNORED_CFN_LINT_WARNINGS.keys())
    assert errors == []
    assert unknown == []


# What the cdk CLI tells the app of the environment: nothing (`make synth`), its default region
# only (no credentials), or the account and region of its credentials (`make deploy`).
CLI_ENVIRONMENTS = {
    "none": {},
    "region": {"CDK_DEFAULT_REGION": "us-east-1"},
    "account_and_region": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
}


@pytest.mark.parametrize("cli_environment", sorted(CLI_ENVIRONMENTS))
def test_make_synth_for_prod_writes_the_template_and_passes_the_checks(tmp_path, monkeypatch, capsys,
                                                                       cli_environment):
    # Given the deps layer already built (test_layer_build builds the real one), and the
    # environment as the cdk CLI gives it
    import infra.app

    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    for name, value in CLI_ENVIRONMENTS[cli_environment].items():
        monkeypatch.setenv(name, value)

    deps = tmp_path / "deps-layer"
    (deps / "python").mkdir(parents=True)
    (deps / "python" / "placeholder.txt").write_text("stands in for the real packages\n")
    monkeypatch.setattr(infra.app, "build_deps_layer", lambda *args, **kwargs: deps)
    monkeypatch.setattr(infra.app, "DASHBOARD_DIST", tmp_path / "no-dashboard" / "dist")
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    registered = []
    real_checks = nag.checks

    def counted_checks():
        registered.append(real_checks())
        return registered[-1]

    monkeypatch.setattr(nag, "checks", counted_checks)

    # When `make synth STAGE=prod` runs the app
    infra.app.main(["-c", "stage=prod"])

    # Then the prod template is written, the checks passed, and the run said what it left out
    template = json.loads((tmp_path / "cdk.out" / "Sendline-prod.template.json").read_text())
    assert template["Description"] == "Sendline SMS platform (prod)"
    assert len(registered) == 1  # the AWS Solutions checks ran on the synth, which raises on a finding
    report = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text())
    assert report["pluginReports"] == []  # CDK lists only the plugins that found something
    err = capsys.readouterr().err
    assert "layers unzipped: shared " in err
    assert "only the dashboard's config.json is deployed" in err
    assert "synthesized Sendline-prod into" in err
