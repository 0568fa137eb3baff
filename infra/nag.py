"""cdk-nag's AWS Solutions rules, and why each finding the stack keeps is accepted.

cdk-nag 3 is a CDK policy-validation plugin: `infra.app` registers `checks()` on the app, so a
synth (`make synth`, `cdk synth`, `cdk deploy`) fails on any finding nobody accepted. A finding is
accepted on the construct it concerns with `Validations.of(construct).acknowledge(...)`, always
with the reason it is acceptable here; `accept_findings` does all of them, and
`acknowledgments` lists them back (the tests check every reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

if TYPE_CHECKING:
    from infra.stack import SendlineStack

PACK = "AwsSolutions"

# --- why each accepted finding is acceptable ---------------------------------------------------

RUNTIME_PINNED = (
    "python3.12 on purpose: the AWS Powertools layer version and the deps layer's wheels "
    "(cp312, manylinux aarch64) are built for 3.12; moving on is one change to infra.stack.RUNTIME "
    "and LAMBDA_PYTHON_VERSION plus a rebuild of the deps layer."
)
XRAY_ANY_RESOURCE = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no "
    "resource-level permissions, so AWS documents Resource '*' for them."
)
TABLE_INDEXES = (
    "Queries through the table's own global secondary indexes (gsi1, due, log), whose ARNs are "
    "<table ARN>/index/<name>: the wildcard covers this one table's indexes and nothing else."
)
UPLOAD_OBJECTS = (
    "Import files and reports are keyed by an import id made at run time (imports/<id>/contacts.csv, "
    "reports/<id>.csv); the grant is the listed object actions on this one bucket's objects."
)
METRICS_ANY_RESOURCE = (
    "cloudwatch:GetMetricData accepts no resource-level permissions (AWS allows only Resource '*'); "
    "it reads the functions' error and throttle metrics for the worker-health page, read-only."
)
ROUTE_AUTH_IN_CODE = {
    "api_key": (
        "Integrator route: integrators have no Cognito identity; the function authenticates the "
        "X-API-Key header (or api_key parameter) against the stored keys and rate-limits each key."
    ),
    "api_key_or_operator": (
        "Shared route: the function accepts an integrator's API key or verifies an operator's Cognito "
        "JWT itself (COGNITO_ISSUER, COGNITO_CLIENT_ID), so the gateway cannot require either one."
    ),
    "twilio_signature": (
        "Carrier webhook: Twilio sends no bearer token; the function checks X-Twilio-Signature "
        "(HMAC-SHA1 of the URL and form with the account's auth token) and answers 403 otherwise."
    ),
}
PROVIDER_TOKEN_ROTATION = (
    "Holds the Twilio auth token and the phone-intel API key, issued by those providers: Secrets "
    "Manager cannot rotate a third-party token. The operator rolls it in the provider's console and "
    "puts the new value in this secret (cached 5 minutes by the functions)."
)
DEFAULT_CERTIFICATE_TLS = (
    "The dashboard is served on its *.cloudfront.net name with CloudFront's default certificate, "
    "for which CloudFront does not let a minimum TLS version be set; a custom domain with an ACM "
    "certificate (TLSv1.2_2021) is what lifts this."
)
NO_GEO_RESTRICTION = (
    "No geographic restriction: operators sign in from wherever they work, the distribution serves "
    "only the dashboard's static files, and every API call it makes needs a Cognito token."
)
NO_WAF = (
    "No WAF web ACL on the dashboard: it serves static files only (no forms, no origin logic); the "
    "API is authenticated per route and throttled at its stage, and HTTP APIs take no web ACL."
)
CDK_HANDLER_MANAGED_POLICY = (
    "Role of a handler that aws-cdk-lib provides for a custom resource (S3 bucket notifications, "
    "bucket deployment): CDK attaches AWSLambdaBasicExecutionRole to it and offers no way to swap it."
)
CDK_HANDLER_RUNTIME = (
    "Runtime of a handler that aws-cdk-lib provides and pins for its custom resource (bucket "
    "deployment); it moves with aws-cdk-lib upgrades, not with this project's code."
)
BUCKET_DEPLOYMENT_INVALIDATION = (
    "aws-cdk-lib's BucketDeployment handler invalidates the dashboard's CloudFront cache after copying "
    "a new build; CDK grants it cloudfront:CreateInvalidation and GetInvalidation on '*' with no "
    "narrower option."
)
BUCKET_DEPLOYMENT_COPY = (
    "aws-cdk-lib's BucketDeployment handler copies the dashboard's files from the CDK asset bucket "
    "into the dashboard bucket and prunes old ones: CDK scopes these object actions to those two "
    "buckets."
)

# The findings of aws-cdk-lib's BucketDeployment handler role (IAM5), accepted for BUCKET_DEPLOYMENT_COPY.
BUCKET_DEPLOYMENT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
# The CDK asset bucket's objects, as cdk-nag writes the ARN: the account and region are the
# stack's own when the synth knows them (the cdk CLI tells the app its default region, and the
# account when it has credentials), else the pseudo parameters.
CDK_ASSETS_BUCKET_OBJECTS = "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{account}-{region}/*"
LAMBDA_BASIC_EXECUTION = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# Construct ids aws-cdk-lib gives its singleton custom-resource handlers in a stack.
BUCKET_DEPLOYMENT_HANDLER_PREFIX = "Custom::CDKBucketDeployment"
BUCKET_NOTIFICATIONS_HANDLER_PREFIX = "BucketNotificationsHandler"


@dataclass(frozen=True)
class Accepted:
    path: str  # the construct the finding was accepted on
    rule: str  # e.g. "AwsSolutions-IAM5[Resource::*]"
    reason: str


def checks() -> AwsSolutionsChecks:
    """The rule pack, as the app registers it: `Validations.of(app).add_plugins(checks())`."""
    return AwsSolutionsChecks()


def rule(name: str, finding: str | None = None) -> str:
    return f"{PACK}-{name}" + (f"[{finding}]" if finding else "")


def accept(construct: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def _arn_of(stack: Stack, construct: IConstruct) -> str:
    """How cdk-nag writes a Fn::GetAtt Arn in a finding: <LogicalId.Arn>."""
    return f"<{stack.get_logical_id(construct.node.default_child)}.Arn>"  # type: ignore[arg-type]


def _assets_bucket_objects(stack: Stack) -> str:
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    return CDK_ASSETS_BUCKET_OBJECTS.format(account=account, region=region)


def accept_findings(stack: SendlineStack) -> None:
    """Accepts, with its reason, each finding the stack keeps on purpose."""
    from infra import spec

    table_indexes = f"Resource::{_arn_of(stack, stack.table)}/index/*"
    upload_objects = f"Resource::{_arn_of(stack, stack.uploads)}/*"
    for function_spec in spec.FUNCTIONS:
        accept(stack.functions[function_spec.name], rule("L1"), RUNTIME_PINNED)
        role = stack.roles[function_spec.name]
        accept(role, rule("IAM5", "Resource::*"), XRAY_ANY_RESOURCE)
        if function_spec.table_access != "none":
            accept(role, rule("IAM5", table_indexes), TABLE_INDEXES)
        if function_spec.uses_uploads:
            accept(role, rule("IAM5", upload_objects), UPLOAD_OBJECTS)
    for policy in stack.metrics_policies.values():
        accept(policy, rule("IAM5", "Resource::*"), METRICS_ANY_RESOURCE)
    for route, http_route in stack.routes:
        if route.auth in ROUTE_AUTH_IN_CODE:
            accept(http_route, rule("APIG4"), ROUTE_AUTH_IN_CODE[route.auth])
    accept(stack.provider_secret, rule("SMG4"), PROVIDER_TOKEN_ROTATION)
    accept(stack.distribution, rule("CFR4"), DEFAULT_CERTIFICATE_TLS)
    accept(stack.distribution, rule("CFR1"), NO_GEO_RESTRICTION)
    accept(stack.distribution, rule("CFR2"), NO_WAF)

    for child in stack.node.children:
        if child.node.id.startswith(BUCKET_NOTIFICATIONS_HANDLER_PREFIX):
            accept(child, rule("IAM4", f"Policy::{LAMBDA_BASIC_EXECUTION}"), CDK_HANDLER_MANAGED_POLICY)
        elif child.node.id.startswith(BUCKET_DEPLOYMENT_HANDLER_PREFIX):
            accept(child, rule("IAM4", f"Policy::{LAMBDA_BASIC_EXECUTION}"), CDK_HANDLER_MANAGED_POLICY)
            accept(child, rule("L1"), CDK_HANDLER_RUNTIME)
            for action in BUCKET_DEPLOYMENT_ACTIONS:
                accept(child, rule("IAM5", f"Action::{action}"), BUCKET_DEPLOYMENT_COPY)
            accept(child, rule("IAM5", f"Resource::{_assets_bucket_objects(stack)}"), BUCKET_DEPLOYMENT_COPY)
            accept(child, rule("IAM5", f"Resource::{_arn_of(stack, stack.dashboard_bucket)}/*"),
                   BUCKET_DEPLOYMENT_COPY)
            if stack.dashboard_invalidated:
                accept(child, rule("IAM5", "Resource::*"), BUCKET_DEPLOYMENT_INVALIDATION)


def acknowledgments(scope: IConstruct) -> list[Accepted]:
    """Every finding accepted under `scope`, with the construct and the reason."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key and entry.data:
                for rule_id, reason in entry.data.items():
                    found.append(Accepted(construct.node.path, rule_id.split("::", 1)[-1], reason))
    return found
