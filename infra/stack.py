"""Sendline on AWS: every resource is derived from `infra.spec` by looping over it.

Nothing here names a function, route, queue or schedule; adding one to the spec adds it here.
One stack per stage (`dev`, `prod`); every name carries the stage, so both can live in one
account. The stage decides what happens to data when the stack is deleted (`Stage`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    Aws,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_apigatewayv2_authorizers import HttpUserPoolAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra import nag, spec
from infra.layer_build import pinned_version

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
SHARED_LAYER_DIR = REPO_ROOT / "layers" / "sendline"

RUNTIME = lambda_.Runtime.PYTHON_3_12
# The deps layer is built for this architecture too (infra.layer_build.MACHINES).
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.handler"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
APPLICATION_LOG_LEVEL = lambda_.ApplicationLogLevel.INFO
# INFO keeps Lambda's START and REPORT lines (billed duration, init duration, peak memory):
# what docs/cost.md and docs/performance.md read the real figures from.
SYSTEM_LOG_LEVEL = lambda_.SystemLogLevel.INFO

# AWS publishes Powertools as a public layer, one layer version per release; the version matching
# the aws-lambda-powertools pinned in requirements.lock is looked up here, so the functions run
# the release the tests ran. AWS also publishes the mapping itself: the SSM public parameter
# /aws/service/powertools/python/arm64/python3.12/<release> holds the layer's ARN.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python312-arm64"
POWERTOOLS_LAYER_VERSIONS = {"3.37.0": 41}

TWILIO_API_BASE = "https://api.twilio.com"
PHONE_INTEL_API_BASE = "https://api.trestleiq.com"
TWILIO_LOOKUP_API_BASE = "https://lookups.twilio.com"
SERVICE_NAME = "sendline"
METRICS_NAMESPACE = "Sendline"
# The metrics send_worker and dlr_webhook emit (Powertools, namespace METRICS_NAMESPACE):
# `Send_<SendResult>` and `Receipt_<ReceiptResult>` (sendline.services.sending / delivery).
SEND_OUTCOMES = ("sent", "failed", "skipped", "unknown")
RECEIPT_OUTCOMES = ("applied", "ignored", "parked", "untracked")

CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "X-API-Key", "Idempotency-Key")
# With CORS set on the API, API Gateway answers for it and drops the functions' own CORS
# headers, so what the dashboard may read from a response is listed here.
CORS_EXPOSE_HEADERS = ("X-Next-Cursor", "Content-Disposition", "Retry-After", "X-RateLimit-Limit",
                       "X-RateLimit-Remaining", "X-RateLimit-Reset")
# Carriers post two callbacks per message (sent, then delivered/undelivered), so a campaign at
# 100+ msg/s alone brings 200+ req/s to the webhooks; the limits leave room above that.
API_RATE_LIMIT_RPS = 500
API_BURST_LIMIT = 1000

# Route authentication: checked by API Gateway against Cognito, or by the function's code.
GATEWAY_AUTH = "operator"
# api_key: the X-API-Key header; twilio_signature: X-Twilio-Signature; api_key_or_operator:
# either, the function verifying the operator's Cognito token itself (COGNITO_* variables).
AUTH_CHECKED_BY_FUNCTION = ("api_key", "api_key_or_operator", "twilio_signature")
COGNITO_VERIFYING_AUTH = "api_key_or_operator"
WEBHOOK_AUTH = "twilio_signature"

# AWS recommends an SQS visibility timeout of at least six times the consumer's timeout, so a
# message is not redelivered while a slow invocation still holds it.
MIN_VISIBILITY_TO_TIMEOUT_RATIO = 6
# Below 2, Lambda rejects the event source mapping's MaximumConcurrency.
MIN_QUEUE_CONCURRENCY = 2

ALARM_PERIOD = Duration.minutes(5)
# Share of API requests answered 5xx that raises the alarm, in percent over ALARM_PERIOD.
API_5XX_RATE_PERCENT = 5

DASHBOARD_CONFIG_FILE = "config.json"
DASHBOARD_INDEX = "index.html"

ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]

# Actions of the operator's queue tooling (spec.Function.operates_queues).
QUEUE_DEPTH_ACTIONS = ["sqs:GetQueueAttributes"]
DEAD_LETTER_READ_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
DEAD_LETTER_MOVE_ACTIONS = ["sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask"]
REDRIVE_ACTIONS = ["sqs:SendMessage"]
METRICS_READ_ACTIONS = ["cloudwatch:GetMetricData"]

UPLOADS_READ_ACTIONS = ["s3:GetObject"]
# A file that is not there reads as 404 (not 403) only with ListBucket on the bucket.
UPLOADS_LIST_ACTIONS = ["s3:ListBucket"]
# Large reports are written in parts (upload_fileobj): PutObject covers the parts, an
# interrupted upload is aborted.
UPLOADS_WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]


@dataclass(frozen=True)
class Stage:
    name: str
    # prod keeps its data (table, buckets, user pool, secret, logs) when the stack is deleted and
    # protects the table from deletion; dev is removed whole by `cdk destroy`.
    keeps_data: bool
    # Reserved concurrency (spec.Function.reserved_concurrency) only in prod: a new account's
    # concurrency quota is 10, all of which Lambda keeps unreserved, so any reservation would
    # fail a dev deploy there.
    reserves_concurrency: bool

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.keeps_data else RemovalPolicy.DESTROY


STAGES = {
    "dev": Stage("dev", keeps_data=False, reserves_concurrency=False),
    "prod": Stage("prod", keeps_data=True, reserves_concurrency=True),
}


def pascal(name: str) -> str:
    """`send_worker` -> `SendWorker`, for construct ids and output names."""
    return "".join(part.capitalize() for part in re.split(r"[_\-\s/.]+", name) if part)


def resource_name(stage: str, name: str) -> str:
    """The deployed name of a queue, function, table...: `sendline-<stage>-<name>`."""
    return f"{SERVICE_NAME}-{stage}-{name}"


def function_name(stage: str, function_spec_name: str) -> str:
    return resource_name(stage, function_spec_name)


def powertools_layer_arn(release: str, layer_versions: dict[str, int] = POWERTOOLS_LAYER_VERSIONS) -> str:
    """AWS's public Powertools layer for `release`, in the stack's region."""
    if release not in layer_versions:
        raise ValueError(
            f"requirements.lock pins aws-lambda-powertools {release}, whose public layer version is not in "
            f"POWERTOOLS_LAYER_VERSIONS; AWS publishes it in the SSM parameter "
            f"/aws/service/powertools/python/arm64/python3.12/{release}")
    return (f"arn:aws:lambda:{Aws.REGION}:{POWERTOOLS_LAYER_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:"
            f"{layer_versions[release]}")


class SendlineStack(Stack):
    """The whole platform in one stack.

    `deps_layer_dir` is a folder holding `python/<third-party packages>`; `infra.app` builds it
    from requirements.lock, tests pass a placeholder so they never touch the network.
    `dashboard_dir` holds the dashboard's built files; without it only its config.json is
    deployed. `extra_origins` are more origins the API and uploads accept besides the dashboard's
    (e.g. `http://localhost:5173` while developing it).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        deps_layer_dir: str | Path,
        dashboard_dir: str | Path | None = None,
        extra_origins: Sequence[str] = (),
        alarm_email: str | None = None,
        powertools_layer_version: int | None = None,
        functions_dir: str | Path = FUNCTIONS_DIR,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        _check_spec()
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
        self.stage = STAGES[stage]
        self.extra_origins = list(extra_origins)
        self.functions_dir = Path(functions_dir)

        self.access_logs = self._access_logs_bucket()
        self.alarm_topic = self._alarm_topic(alarm_email)
        self.alarm_action = cloudwatch_actions.SnsAction(self.alarm_topic)
        self.table = self._table()
        self.queues, self.dead_letter_queues = self._queues()

        self.dashboard_bucket = self._dashboard_bucket()
        self.distribution = self._distribution()
        self.dashboard_url = f"https://{self.distribution.distribution_domain_name}"
        self.allowed_origins = [self.dashboard_url, *self.extra_origins]

        self.uploads = self._uploads_bucket()
        self.provider_secret = secretsmanager.Secret(
            self,
            "TwilioSecret",
            # No fixed name: a deleted secret keeps its name for its recovery window, which would
            # block deploying a destroyed dev stage again.
            description=("Provider credentials: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, and "
                         "PHONE_INTEL_API_KEY for the activity-score lookups."),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                # The operator puts the real credentials in after the first deploy. Until then the
                # auth token is random rather than a known placeholder, so no forged webhook
                # signature can match it.
                secret_string_template='{"TWILIO_ACCOUNT_SID": "set-me"}',
                generate_string_key="TWILIO_AUTH_TOKEN",
                exclude_punctuation=True,
            ),
            removal_policy=self.stage.removal_policy,
        )
        self.user_pool, self.user_pool_client, self.cognito_domain = self._operators()
        self.cognito_issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool.user_pool_id}"
        self.http_api, self.api_stage = self._http_api()
        self.authorizer = HttpUserPoolAuthorizer(
            "OperatorAuthorizer",
            self.user_pool,
            authorizer_name=resource_name(stage, "operators"),
            user_pool_clients=[self.user_pool_client],
        )
        self.layers = self._layers(Path(deps_layer_dir), powertools_layer_version)

        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.routes: list[tuple[spec.Route, apigwv2.HttpRoute]] = []
        self.metrics_policies: dict[str, iam.Policy] = {}
        for function_spec in spec.FUNCTIONS:
            self.functions[function_spec.name] = self._function(function_spec)

        self.dashboard_deployments = self._dashboard_files(Path(dashboard_dir) if dashboard_dir else None)
        self._alarms()
        self.operations_dashboard = self._operations_dashboard()
        self._outputs()
        nag.accept_findings(self)

    # --- storage ---------------------------------------------------------------------------

    def _access_logs_bucket(self) -> s3.Bucket:
        """Where S3 server access logs and CloudFront's standard logs go. CloudFront writes its
        logs with an ACL, hence object-writer ownership (ACLs on, public access still blocked)."""
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=self.stage.removal_policy,
            auto_delete_objects=not self.stage.keeps_data,
        )

    def _uploads_bucket(self) -> s3.Bucket:
        """Contact files uploaded through presigned URLs, and import reports. Private, encrypted,
        TLS only; files expire, since the contacts live in the table once imported."""
        bucket_spec = spec.UPLOADS
        bucket = s3.Bucket(
            self,
            pascal(bucket_spec.name),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(bucket_spec.expire_days),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))],
            # The dashboard PUTs files straight to S3 with the presigned URL the API hands out.
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET],
                              allowed_origins=self.allowed_origins,
                              allowed_headers=["Content-Type"], max_age=3000)],
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"s3/{bucket_spec.name}/",
            removal_policy=self.stage.removal_policy,
            auto_delete_objects=not self.stage.keeps_data,
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3_notifications.SqsDestination(self.queues[bucket_spec.notify_queue]),
            s3.NotificationKeyFilter(prefix=bucket_spec.notify_prefix),
        )
        return bucket

    def _table(self) -> dynamodb.Table:
        table_spec = spec.TABLE
        string = dynamodb.AttributeType.STRING
        table = dynamodb.Table(
            self,
            "Table",
            table_name=f"{table_spec.name}-{self.stage.name}",
            partition_key=dynamodb.Attribute(name=table_spec.pk, type=string),
            sort_key=dynamodb.Attribute(name=table_spec.sk, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=table_spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=self.stage.keeps_data,
            removal_policy=self.stage.removal_policy,
        )
        for index in table_spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.pk, type=string),
                sort_key=dynamodb.Attribute(name=index.sk, type=string),
                projection_type=dynamodb.ProjectionType[index.projection],
            )
        return table

    def _queues(self) -> tuple[dict[str, sqs.Queue], dict[str, sqs.Queue]]:
        queues: dict[str, sqs.Queue] = {}
        dead_letter_queues: dict[str, sqs.Queue] = {}
        for queue_spec in spec.QUEUES:
            construct_id = pascal(queue_spec.name)
            dlq_name = resource_name(self.stage.name, f"{queue_spec.name}-dlq")
            dlq = sqs.Queue(
                self,
                f"{construct_id}DeadLetterQueue",
                queue_name=dlq_name,
                # The longest SQS allows, so a poison message waits for a person to look at it.
                retention_period=Duration.days(14),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                f"{construct_id}Queue",
                queue_name=resource_name(self.stage.name, queue_spec.name),
                visibility_timeout=Duration.seconds(queue_spec.visibility_timeout_s),
                retention_period=Duration.seconds(queue_spec.retention_s),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=dlq, max_receive_count=queue_spec.max_receive_count
                ),
            )
            self._alarm(f"{construct_id}DeadLetterAlarm", f"{queue_spec.name}-dead-letters",
                        f"Messages are waiting in {dlq_name}.",
                        dlq.metric_approximate_number_of_messages_visible(
                            period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM))
            if queue_spec.oldest_message_alarm_s is not None:
                self._alarm(
                    f"{construct_id}QueueAgeAlarm", f"{queue_spec.name}-oldest-message",
                    (f"The oldest message in {resource_name(self.stage.name, queue_spec.name)} "
                     f"has waited over {queue_spec.oldest_message_alarm_s} s."),
                    queue.metric_approximate_age_of_oldest_message(
                        period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM),
                    threshold=queue_spec.oldest_message_alarm_s,
                    # Five minutes in a row: a burst that the workers drain is not an incident.
                    evaluation_periods=5)
            queues[queue_spec.name] = queue
            dead_letter_queues[queue_spec.name] = dlq
        return queues, dead_letter_queues

    # --- alarms --------------------------------------------------------------------------

    def _alarm(self, construct_id: str, name: str, description: str, metric: cloudwatch.IMetric, *,
               threshold: float = 0, evaluation_periods: int = 1) -> cloudwatch.Alarm:
        """An alarm when `metric` goes over `threshold` for `evaluation_periods` periods in a row
        (no data is no alarm), telling the alarm topic when it goes off and when it clears."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=resource_name(self.stage.name, name),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self.alarm_action)
        alarm.add_ok_action(self.alarm_action)
        return alarm

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        """Every alarm's action. Encrypted with a key of the stack's own: CloudWatch cannot
        publish to a topic encrypted with the AWS-managed SNS key."""
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the {resource_name(self.stage.name, 'alarms')} topic.",
            enable_key_rotation=True,
            removal_policy=self.stage.removal_policy,
        )
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[cloudwatch_principal],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=resource_name(self.stage.name, "alarms"),
            display_name=f"Sendline {self.stage.name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[cloudwatch_principal],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"},
            },
        ))
        if alarm_email:
            topic.add_subscription(sns_subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarms(self) -> None:
        """Errors and throttles of every function, and the share of API requests answered 5xx.
        (Dead letters and queue age are raised with their queues.)"""
        for name, function in self.functions.items():
            construct_id = pascal(name)
            for kind, metric in (("Errors", function.metric_errors(period=ALARM_PERIOD, statistic="Sum")),
                                 ("Throttles", function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"))):
                self._alarm(f"{construct_id}{kind}Alarm", f"{name}-{kind.lower()}",
                            f"{function_name(self.stage.name, name)} had {kind.lower()}.", metric)

        server_errors = self.http_api.metric_server_error(period=ALARM_PERIOD, statistic="Sum")
        requests = self.http_api.metric_count(period=ALARM_PERIOD, statistic="Sum")
        rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * server_errors / requests, 0)",
            using_metrics={"server_errors": server_errors, "requests": requests},
            label="API 5xx (%)",
            period=ALARM_PERIOD,
        )
        self._alarm("Api5xxRateAlarm", "api-5xx-rate", f"Over {API_5XX_RATE_PERCENT}% of API requests were answered 5xx.",
                    rate, threshold=API_5XX_RATE_PERCENT)

    def _operations_dashboard(self) -> cloudwatch.Dashboard:
        """Send and delivery rates (the metrics the code emits), queue depth and age, dead
        letters, function errors and throttles, API traffic."""
        minute = Duration.minutes(1)

        def emitted(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name,
                                     dimensions_map={"service": SERVICE_NAME}, statistic="Sum", period=minute)

        queue_metrics: list[cloudwatch.IMetric] = []
        age_metrics: list[cloudwatch.IMetric] = []
        for name, queue in self.queues.items():
            queue_metrics.append(queue.metric_approximate_number_of_messages_visible(
                period=minute, statistic="Maximum", label=f"{name} waiting"))
            queue_metrics.append(queue.metric_approximate_number_of_messages_not_visible(
                period=minute, statistic="Maximum", label=f"{name} in flight"))
            age_metrics.append(queue.metric_approximate_age_of_oldest_message(
                period=minute, statistic="Maximum", label=f"{name} oldest (s)"))
        dead_letters = [dlq.metric_approximate_number_of_messages_visible(
            period=minute, statistic="Maximum", label=f"{name} dead letters")
            for name, dlq in self.dead_letter_queues.items()]
        errors = [f.metric_errors(period=minute, statistic="Sum", label=name) for name, f in self.functions.items()]
        throttles = [f.metric_throttles(period=minute, statistic="Sum", label=name)
                     for name, f in self.functions.items()]

        dashboard = cloudwatch.Dashboard(self, "OperationsDashboard",
                                         dashboard_name=resource_name(self.stage.name, "operations"))
        width = 12
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Texts sent per minute, by outcome", width=width,
                                   left=[emitted(f"Send_{outcome}") for outcome in SEND_OUTCOMES]),
            cloudwatch.GraphWidget(title="Delivery receipts per minute", width=width,
                                   left=[emitted(f"Receipt_{outcome}") for outcome in RECEIPT_OUTCOMES]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Queue depth", width=width, left=queue_metrics),
            cloudwatch.GraphWidget(title="Oldest message (s) and dead letters", width=width,
                                   left=age_metrics, right=dead_letters),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Function errors", width=width, left=errors),
            cloudwatch.GraphWidget(title="Function throttles", width=width, left=throttles),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API requests and errors", width=width,
                                   left=[self.http_api.metric_count(period=minute, statistic="Sum"),
                                         self.http_api.metric_client_error(period=minute, statistic="Sum"),
                                         self.http_api.metric_server_error(period=minute, statistic="Sum")]),
            cloudwatch.GraphWidget(title="API latency (p95, ms)", width=width,
                                   left=[self.http_api.metric_latency(period=minute, statistic="p95")]),
        )
        return dashboard

    # --- operators and the dashboard ------------------------------------------------------

    def _operators(self) -> tuple[cognito.UserPool, cognito.UserPoolClient, cognito.UserPoolDomain]:
        """The operators' user pool: accounts are created by an administrator only, sign-in
        needs a strong password and a TOTP code. The dashboard signs in as a public client
        (no secret): SRP, or the hosted sign-in page with an authorization code and PKCE."""
        stage = self.stage.name
        pool = cognito.UserPool(
            self,
            "Operators",
            user_pool_name=resource_name(stage, "operators"),
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Plus adds threat protection: sign-ins with leaked credentials or from unusual
            # places are blocked, for a few cents a month at an operator team's size.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=self.stage.keeps_data,
            removal_policy=self.stage.removal_policy,
        )
        redirect_urls = [f"{origin}/" for origin in self.allowed_origins]
        client = pool.add_client(
            "DashboardClient",
            user_pool_client_name=resource_name(stage, "dashboard"),
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=redirect_urls,
                logout_urls=redirect_urls,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(7),
        )
        domain = pool.add_domain(
            "HostedSignIn",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=self._cognito_domain_prefix()),
        )
        return pool, client, domain

    def _cognito_domain_prefix(self) -> str:
        # Globally unique per region: the stage and the account make it so.
        return f"{SERVICE_NAME}-{self.stage.name}-{Aws.ACCOUNT_ID}"

    def _cognito_domain_url(self) -> str:
        return f"https://{self._cognito_domain_prefix()}.auth.{Aws.REGION}.amazoncognito.com"

    def _dashboard_bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "DashboardBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="s3/dashboard/",
            removal_policy=self.stage.removal_policy,
            auto_delete_objects=not self.stage.keeps_data,
        )

    def content_security_policy(self) -> str:
        """What the dashboard's pages may load and call.

        The API and the upload URLs are allowed by host pattern rather than by their exact
        names: the API's CORS and the uploads bucket's CORS name the distribution's origin, so
        a header naming them back would make the distribution and them depend on each other.
        """
        region = Aws.REGION
        connect = [
            "'self'",
            f"https://*.execute-api.{region}.amazonaws.com",
            f"https://cognito-idp.{region}.amazonaws.com",
            self._cognito_domain_url(),
            "https://*.s3.amazonaws.com",
            f"https://*.s3.{region}.amazonaws.com",
        ]
        directives = [
            "default-src 'self'",
            "script-src 'self'",
            # Inline style attributes only (chart libraries set them); never inline scripts.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            f"form-action 'self' {self._cognito_domain_url()}",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "object-src 'none'",
        ]
        return "; ".join(directives)

    def _distribution(self) -> cloudfront.Distribution:
        """The dashboard: private bucket, CloudFront with origin access control, HTTPS only,
        security headers, and index.html for any path the single-page app routes itself."""
        self.dashboard_headers = headers = cloudfront.ResponseHeadersPolicy(
            self,
            "DashboardHeaders",
            response_headers_policy_name=resource_name(self.stage.name, "dashboard-headers"),
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.content_security_policy(), override=True),
            ),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.dashboard_bucket)

        def behavior(cache_policy: cloudfront.ICachePolicy) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cache_policy,
                response_headers_policy=headers,
                compress=True,
            )

        # A path the app routes itself is no object in the bucket: S3 answers 403 through OAC
        # (it may not list the bucket), or 404; either way the app's page answers.
        spa_fallback = [
            cloudfront.ErrorResponse(http_status=status, response_http_status=200,
                                     response_page_path=f"/{DASHBOARD_INDEX}", ttl=Duration.seconds(0))
            for status in (403, 404)
        ]
        return cloudfront.Distribution(
            self,
            "Dashboard",
            comment=f"Sendline {self.stage.name} dashboard",
            default_root_object=DASHBOARD_INDEX,
            default_behavior=behavior(cloudfront.CachePolicy.CACHING_OPTIMIZED),
            # The runtime configuration changes with every deploy: never served from a cache.
            additional_behaviors={f"/{DASHBOARD_CONFIG_FILE}": behavior(cloudfront.CachePolicy.CACHING_DISABLED)},
            error_responses=spa_fallback,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.access_logs,
            log_file_prefix="cloudfront/dashboard/",
        )

    def dashboard_config(self) -> dict[str, str]:
        """The dashboard's runtime configuration, served as /config.json (never built in)."""
        return {
            "apiUrl": self.http_api.api_endpoint,
            "region": self.region,
            "stage": self.stage.name,
            "userPoolId": self.user_pool.user_pool_id,
            "userPoolClientId": self.user_pool_client.user_pool_client_id,
            "cognitoDomain": self._cognito_domain_url(),
        }

    def _dashboard_files(self, dashboard_dir: Path | None) -> list[s3_deployment.BucketDeployment]:
        """The built dashboard (when there is one), then config.json."""
        deployments = []
        self.dashboard_invalidated = dashboard_dir is not None
        if dashboard_dir is not None:
            if not (dashboard_dir / DASHBOARD_INDEX).is_file():
                raise ValueError(f"dashboard folder {dashboard_dir} has no {DASHBOARD_INDEX}")
            deployments.append(s3_deployment.BucketDeployment(
                self,
                "DashboardFiles",
                sources=[s3_deployment.Source.asset(str(dashboard_dir))],
                destination_bucket=self.dashboard_bucket,
                # config.json is the other deployment's; pruning leaves excluded files alone.
                exclude=[DASHBOARD_CONFIG_FILE],
                prune=True,
                distribution=self.distribution,
                distribution_paths=["/*"],
            ))
        deployments.append(s3_deployment.BucketDeployment(
            self,
            "DashboardConfig",
            sources=[s3_deployment.Source.json_data(DASHBOARD_CONFIG_FILE, self.dashboard_config())],
            destination_bucket=self.dashboard_bucket,
            prune=False,
            cache_control=[s3_deployment.CacheControl.no_cache()],
        ))
        return deployments

    # --- API -----------------------------------------------------------------------------

    def _http_api(self) -> tuple[apigwv2.HttpApi, apigwv2.HttpStage]:
        # The methods some route serves ("ANY" is the catch-all that answers 404: no method of its own).
        methods = sorted({route.method for f in spec.FUNCTIONS for route in f.routes} - {"ANY"})
        api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=resource_name(self.stage.name, "api"),
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=self.allowed_origins,
                allow_headers=list(CORS_ALLOW_HEADERS),
                expose_headers=list(CORS_EXPOSE_HEADERS),
                allow_methods=[apigwv2.CorsHttpMethod[m] for m in methods]
                + [apigwv2.CorsHttpMethod.OPTIONS],
                max_age=Duration.hours(1),
            ),
            # The stage is created below, to give it throttling and access logs.
            create_default_stage=False,
        )
        stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=API_RATE_LIMIT_RPS, burst_limit=API_BURST_LIMIT
            ),
        )
        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            log_group_name=f"/{SERVICE_NAME}/{self.stage.name}/api-access",
            retention=LOG_RETENTION,
            removal_policy=self.stage.removal_policy,
        )
        cfn_stage: apigwv2.CfnStage = stage.node.default_child  # type: ignore[assignment]
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn,
            format=json.dumps(API_ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        return api, stage

    # --- functions -----------------------------------------------------------------------

    def _layers(self, deps_layer_dir: Path, powertools_layer_version: int | None) -> list[lambda_.ILayerVersion]:
        """AWS's Powertools layer first, the deps layer last: a package both ship (pydantic,
        say) comes from the deps layer, at the version the tests ran, as later layers win.

        CDK lists a function's layers sorted by construct path (the recognizeLayerVersion flag)
        and Lambda applies them in that order, hence the numbered construct ids.
        """
        if not (deps_layer_dir / "python").is_dir():
            raise ValueError(f"deps layer folder {deps_layer_dir} has no python/ directory")
        release = pinned_version("aws-lambda-powertools")
        versions = dict(POWERTOOLS_LAYER_VERSIONS)
        if powertools_layer_version is not None:
            versions[release] = powertools_layer_version
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "Layer0Powertools", powertools_layer_arn(release, versions)
        )
        shared = lambda_.LayerVersion(
            self,
            "Layer1Shared",
            layer_version_name=resource_name(self.stage.name, "shared"),
            description="The sendline package shared by every function.",
            code=lambda_.Code.from_asset(str(SHARED_LAYER_DIR), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=RemovalPolicy.DESTROY,
        )
        deps = lambda_.LayerVersion(
            self,
            "Layer2Deps",
            layer_version_name=resource_name(self.stage.name, "deps"),
            description="Third-party runtime packages pinned in requirements.lock.",
            code=lambda_.Code.from_asset(str(deps_layer_dir), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=RemovalPolicy.DESTROY,
        )
        return [powertools, shared, deps]

    def _environment(self, function_spec: spec.Function) -> dict[str, str]:
        environment = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "PUBLIC_API_URL": self.http_api.api_endpoint,
        }
        if function_spec.table_access != "none":
            environment["TABLE_NAME"] = self.table.table_name
        # Operators sign in with Cognito only (a password and a TOTP code): no static operator
        # token is set, so none is accepted (the local stack's admin token is the local login).
        auths = {route.auth for route in function_spec.routes}
        if COGNITO_VERIFYING_AUTH in auths:
            environment["COGNITO_ISSUER"] = self.cognito_issuer
            environment["COGNITO_CLIENT_ID"] = self.user_pool_client.user_pool_client_id
        for queue_name in function_spec.publishes_to:
            environment[spec.queue_url_env(queue_name)] = self.queues[queue_name].queue_url
        if function_spec.needs_provider:
            environment["TWILIO_API_BASE"] = TWILIO_API_BASE
            environment["TWILIO_SECRET_ARN"] = self.provider_secret.secret_arn
        if function_spec.needs_validation:
            environment["PHONE_INTEL_API_BASE"] = PHONE_INTEL_API_BASE
            environment["TWILIO_LOOKUP_API_BASE"] = TWILIO_LOOKUP_API_BASE
        if function_spec.uses_uploads:
            environment["UPLOADS_BUCKET"] = self.uploads.bucket_name
        if function_spec.watches_dead_letters or function_spec.operates_queues:
            for queue_name, dlq in self.dead_letter_queues.items():
                environment[spec.dlq_url_env(queue_name)] = dlq.queue_url
        if function_spec.operates_queues:
            for queue_name, queue in self.queues.items():
                environment[spec.queue_url_env(queue_name)] = queue.queue_url
            # Plain names, not references: a reference to every other function would make this
            # one depend on all of them.
            others = {f.name: function_name(self.stage.name, f.name)
                      for f in spec.FUNCTIONS if f.name != function_spec.name}
            environment[spec.FUNCTION_NAMES_ENV] = json.dumps(others, sort_keys=True, separators=(",", ":"))
        return environment

    def _function(self, function_spec: spec.Function) -> lambda_.Function:
        construct_id = pascal(function_spec.name)
        name = function_name(self.stage.name, function_spec.name)
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            log_group_name=f"/aws/lambda/{name}",
            retention=LOG_RETENTION,
            removal_policy=self.stage.removal_policy,
        )
        # A role of its own, not CDK's default with the AWSLambdaBasicExecutionRole managed
        # policy: it may write to its own log group and nowhere else.
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {name} with the permissions its code uses.",
        )
        log_group.grant_write(role)
        reserved = function_spec.reserved_concurrency if self.stage.reserves_concurrency else None
        function = lambda_.Function(
            self,
            construct_id,
            function_name=name,
            description=function_spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(self.functions_dir / function_spec.name), exclude=ASSET_EXCLUDES
            ),
            layers=self.layers,
            memory_size=function_spec.memory_mb,
            timeout=Duration.seconds(function_spec.timeout_s),
            environment=self._environment(function_spec),
            role=role,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=APPLICATION_LOG_LEVEL,
            system_log_level_v2=SYSTEM_LOG_LEVEL,
            reserved_concurrent_executions=reserved,
        )
        self.roles[function_spec.name] = role
        self.log_groups[function_spec.name] = log_group
        self._grant(function_spec, role)

        if function_spec.routes:
            integration = HttpLambdaIntegration(f"{construct_id}Integration", function)
            for route in function_spec.routes:
                authorizer = self.authorizer if route.auth == GATEWAY_AUTH else apigwv2.HttpNoneAuthorizer()
                (http_route,) = self.http_api.add_routes(
                    path=route.path,
                    methods=[apigwv2.HttpMethod[route.method]],
                    integration=integration,
                    authorizer=authorizer,
                )
                self.routes.append((route, http_route))

        trigger = function_spec.queue
        if trigger is not None:
            # Grants the function the right to receive and delete from the queue.
            function.add_event_source(
                event_sources.SqsEventSource(
                    self.queues[trigger.queue],
                    batch_size=trigger.batch_size,
                    max_concurrency=trigger.max_concurrency,
                    max_batching_window=Duration.seconds(trigger.max_batching_window_s),
                    report_batch_item_failures=True,
                )
            )

        if function_spec.schedule is not None:
            events.Rule(
                self,
                f"{construct_id}Schedule",
                rule_name=resource_name(self.stage.name, function_spec.name),
                description=f"Runs {function_spec.name} on {function_spec.schedule.expression}.",
                schedule=events.Schedule.expression(function_spec.schedule.expression),
                targets=[events_targets.LambdaFunction(function)],
            )
        return function

    def _grant(self, function_spec: spec.Function, role: iam.Role) -> None:
        """Exactly what the function's code does with each resource (spec flags)."""
        if function_spec.table_access == "read":
            self.table.grant_read_data(role)
        elif function_spec.table_access == "read_write":
            self.table.grant_read_write_data(role)
        for queue_name in function_spec.publishes_to:
            self.queues[queue_name].grant_send_messages(role)
        if function_spec.needs_provider:
            self.provider_secret.grant_read(role)
        if function_spec.uses_uploads:
            objects = self.uploads.arn_for_objects("*")
            role.add_to_principal_policy(iam.PolicyStatement(actions=UPLOADS_WRITE_ACTIONS, resources=[objects]))
            if function_spec.uploads_access == "read_write":
                role.add_to_principal_policy(iam.PolicyStatement(actions=UPLOADS_READ_ACTIONS, resources=[objects]))
                role.add_to_principal_policy(iam.PolicyStatement(actions=UPLOADS_LIST_ACTIONS,
                                                                 resources=[self.uploads.bucket_arn]))
        if function_spec.watches_dead_letters:
            for dlq in self.dead_letter_queues.values():
                dlq.grant(role, *QUEUE_DEPTH_ACTIONS)
        if function_spec.operates_queues:
            self._grant_queue_operations(function_spec, role)

    def _grant_queue_operations(self, function_spec: spec.Function, role: iam.Role) -> None:
        queues = [q.queue_arn for q in self.queues.values()]
        dead_letters = [q.queue_arn for q in self.dead_letter_queues.values()]
        role.add_to_principal_policy(iam.PolicyStatement(actions=QUEUE_DEPTH_ACTIONS, resources=queues + dead_letters))
        role.add_to_principal_policy(iam.PolicyStatement(actions=DEAD_LETTER_READ_ACTIONS + DEAD_LETTER_MOVE_ACTIONS,
                                                         resources=dead_letters))
        # A redrive sends the dead letters back to the queue they came from.
        role.add_to_principal_policy(iam.PolicyStatement(actions=REDRIVE_ACTIONS, resources=queues))
        # GetMetricData takes no resource: a policy of its own, so its "*" is not mixed with
        # anything else.
        self.metrics_policies[function_spec.name] = iam.Policy(
            self,
            f"{pascal(function_spec.name)}MetricsPolicy",
            statements=[iam.PolicyStatement(actions=METRICS_READ_ACTIONS, resources=["*"])],
            roles=[role],
        )

    # --- outputs -------------------------------------------------------------------------

    def webhook_routes(self) -> list[spec.Route]:
        return [r for f in spec.FUNCTIONS for r in f.routes if r.auth == WEBHOOK_AUTH]

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.http_api.api_endpoint, description="The HTTP API.")
        CfnOutput(self, "DashboardUrl", value=self.dashboard_url, description="The operators' dashboard.")
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id,
                  description="Operators' user pool: create each operator here (admin-created users only).")
        CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id,
                  description="The dashboard's app client.")
        CfnOutput(self, "CognitoDomain", value=self._cognito_domain_url(),
                  description="The hosted sign-in page's domain.")
        for route in self.webhook_routes():
            path = route.path.removeprefix("/webhooks/")
            CfnOutput(self, f"{pascal(path)}WebhookUrl", value=f"{self.http_api.api_endpoint}{route.path}",
                      description=f"Paste into Twilio: {route.method} {route.path}.")
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn,
                  description="Every alarm notifies this topic; subscribe to it (or deploy with -c alarmEmail=...).")
        CfnOutput(self, "ProviderSecretArn", value=self.provider_secret.secret_arn,
                  description="Put the Twilio credentials (and PHONE_INTEL_API_KEY) in this secret.")
        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "UploadsBucket", value=self.uploads.bucket_name)
        for name, queue in self.queues.items():
            CfnOutput(self, f"{pascal(name)}QueueUrl", value=queue.queue_url)
            CfnOutput(self, f"{pascal(name)}DlqUrl", value=self.dead_letter_queues[name].queue_url,
                      description=f"For python -m scripts.dlq: {spec.dlq_url_env(name)}.")


# Access log lines of the HTTP API: who called which route, and how it went. No query string
# (integrators may pass their API key as ?api_key=) and no headers.
API_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
}


def _check_spec() -> None:
    """Fails the synth on wiring AWS would reject or that would redeliver messages early."""
    queues = {q.name: q for q in spec.QUEUES}
    if spec.UPLOADS.notify_queue not in queues:
        raise ValueError(f"bucket {spec.UPLOADS.name} notifies unknown queue {spec.UPLOADS.notify_queue!r}")
    known_auth = (GATEWAY_AUTH, *AUTH_CHECKED_BY_FUNCTION)
    for function_spec in spec.FUNCTIONS:
        for route in function_spec.routes:
            if route.auth not in known_auth:
                raise ValueError(f"{function_spec.name}: route {route.method} {route.path} has auth "
                                 f"{route.auth!r}, which no HTTP route can have")
        for queue_name in function_spec.publishes_to:
            if queue_name not in queues:
                raise ValueError(f"{function_spec.name} publishes to unknown queue {queue_name!r}")
        trigger = function_spec.queue
        if function_spec.reserved_concurrency is not None and trigger is not None \
                and function_spec.reserved_concurrency < trigger.max_concurrency:
            raise ValueError(
                f"{function_spec.name}: reserved concurrency {function_spec.reserved_concurrency} is below its "
                f"queue trigger's max_concurrency {trigger.max_concurrency}; the surplus would only be throttled")
        if trigger is None:
            continue
        if trigger.queue not in queues:
            raise ValueError(f"{function_spec.name} consumes unknown queue {trigger.queue!r}")
        if trigger.max_concurrency < MIN_QUEUE_CONCURRENCY:
            raise ValueError(
                f"{function_spec.name}: max_concurrency {trigger.max_concurrency} is below "
                f"the minimum of {MIN_QUEUE_CONCURRENCY}"
            )
        visibility = queues[trigger.queue].visibility_timeout_s
        if visibility < MIN_VISIBILITY_TO_TIMEOUT_RATIO * function_spec.timeout_s:
            raise ValueError(
                f"queue {trigger.queue}: visibility timeout {visibility}s is under "
                f"{MIN_VISIBILITY_TO_TIMEOUT_RATIO} x {function_spec.name}'s "
                f"{function_spec.timeout_s}s timeout"
            )
