"""Sendline on AWS: every resource is derived from `infra.spec` by looping over it.

Nothing here names a function, route, queue or schedule; adding one to the spec adds it here.
"""

from __future__ import annotations

import re
from pathlib import Path

from aws_cdk import (
    CfnOutput,
    CfnParameter,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra import spec

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
SHARED_LAYER_DIR = REPO_ROOT / "layers" / "sendline"

RUNTIME = lambda_.Runtime.PYTHON_3_12
# The deps layer is built for this architecture too (infra.layer_build.WHEEL_PLATFORMS).
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "handler.handler"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

TWILIO_API_BASE = "https://api.twilio.com"
PHONE_INTEL_API_BASE = "https://api.trestleiq.com"
TWILIO_LOOKUP_API_BASE = "https://lookups.twilio.com"
SERVICE_NAME = "sendline"
METRICS_NAMESPACE = "Sendline"

CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "X-API-Key", "Idempotency-Key")
# Carriers post two callbacks per message (sent, then delivered/undelivered), so a campaign at
# 100+ msg/s alone brings 200+ req/s to the webhooks; the limits leave room above that.
API_RATE_LIMIT_RPS = 500
API_BURST_LIMIT = 1000

# AWS recommends an SQS visibility timeout of at least six times the consumer's timeout, so a
# message is not redelivered while a slow invocation still holds it.
MIN_VISIBILITY_TO_TIMEOUT_RATIO = 6
# Below 2, Lambda rejects the event source mapping's MaximumConcurrency.
MIN_QUEUE_CONCURRENCY = 2

ASSET_EXCLUDES = ["__pycache__", "*.pyc", ".pytest_cache"]


def pascal(name: str) -> str:
    """`send_worker` -> `SendWorker`, for construct ids and output names."""
    return "".join(part.capitalize() for part in re.split(r"[_\-\s]+", name) if part)


class SendlineStack(Stack):
    """The whole platform in one stack.

    `deps_layer_dir` is a folder holding `python/<third-party packages>`; `infra.app` builds it
    from requirements.lock, tests pass a placeholder so they never touch the network.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deps_layer_dir: str | Path,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        _check_spec()

        self.table = self._table()
        self.queues, self.dead_letter_queues = self._queues()
        self.uploads = self._uploads_bucket()
        self.provider_secret = secretsmanager.Secret(
            self,
            "TwilioSecret",
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
        )
        self.operator_token_sha256 = CfnParameter(
            self,
            "OperatorTokenSha256",
            type="String",
            no_echo=True,
            allowed_pattern="^[0-9a-f]{64}$",
            description="Hex SHA-256 of the operator token accepted as 'Authorization: Bearer'.",
        )
        self.http_api = self._http_api()
        self.layers = self._layers(Path(deps_layer_dir))

        self.functions: dict[str, lambda_.Function] = {}
        for function_spec in spec.FUNCTIONS:
            self.functions[function_spec.name] = self._function(function_spec)

        self._outputs()

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
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET], allowed_origins=["*"],
                              allowed_headers=["Content-Type"], max_age=3000)],
            removal_policy=RemovalPolicy.RETAIN,
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
            table_name=table_spec.name,
            partition_key=dynamodb.Attribute(name=table_spec.pk, type=string),
            sort_key=dynamodb.Attribute(name=table_spec.sk, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=table_spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
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
            dlq = sqs.Queue(
                self,
                f"{construct_id}DeadLetterQueue",
                queue_name=f"sendline-{queue_spec.name}-dlq",
                # The longest SQS allows, so a poison message waits for a person to look at it.
                retention_period=Duration.days(14),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                f"{construct_id}Queue",
                queue_name=f"sendline-{queue_spec.name}",
                visibility_timeout=Duration.seconds(queue_spec.visibility_timeout_s),
                retention_period=Duration.seconds(queue_spec.retention_s),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=dlq, max_receive_count=queue_spec.max_receive_count
                ),
            )
            cloudwatch.Alarm(
                self,
                f"{construct_id}DeadLetterAlarm",
                alarm_description=f"Messages are waiting in sendline-{queue_spec.name}-dlq.",
                metric=dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            queues[queue_spec.name] = queue
            dead_letter_queues[queue_spec.name] = dlq
        return queues, dead_letter_queues

    def _http_api(self) -> apigwv2.HttpApi:
        # The methods some route serves ("ANY" is the catch-all that answers 404: no method of its own).
        methods = sorted({route.method for f in spec.FUNCTIONS for route in f.routes} - {"ANY"})
        api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name="sendline",
            cors_preflight=apigwv2.CorsPreflightOptions(
                # The dashboard's origin is not fixed yet; narrow this once it is.
                allow_origins=["*"],
                allow_headers=list(CORS_ALLOW_HEADERS),
                allow_methods=[apigwv2.CorsHttpMethod[m] for m in methods]
                + [apigwv2.CorsHttpMethod.OPTIONS],
                max_age=Duration.hours(1),
            ),
            # The stage is created below, to give it throttling.
            create_default_stage=False,
        )
        apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=API_RATE_LIMIT_RPS, burst_limit=API_BURST_LIMIT
            ),
        )
        return api

    def _layers(self, deps_layer_dir: Path) -> list[lambda_.ILayerVersion]:
        if not (deps_layer_dir / "python").is_dir():
            raise ValueError(f"deps layer folder {deps_layer_dir} has no python/ directory")
        shared = lambda_.LayerVersion(
            self,
            "SharedLayer",
            description="The sendline package shared by every function.",
            code=lambda_.Code.from_asset(str(SHARED_LAYER_DIR), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        deps = lambda_.LayerVersion(
            self,
            "DepsLayer",
            description="Third-party runtime packages pinned in requirements.lock.",
            code=lambda_.Code.from_asset(str(deps_layer_dir), exclude=ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
        )
        return [shared, deps]

    def _environment(self, function_spec: spec.Function) -> dict[str, str]:
        environment = {
            "TABLE_NAME": self.table.table_name,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "PUBLIC_API_URL": self.http_api.api_endpoint,
            "OPERATOR_TOKEN_SHA256": self.operator_token_sha256.value_as_string,
        }
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
        if function_spec.watches_dead_letters:
            for queue_name, dlq in self.dead_letter_queues.items():
                environment[spec.dlq_url_env(queue_name)] = dlq.queue_url
        return environment

    def _function(self, function_spec: spec.Function) -> lambda_.Function:
        construct_id = pascal(function_spec.name)
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=LOG_RETENTION)
        function = lambda_.Function(
            self,
            construct_id,
            description=function_spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(FUNCTIONS_DIR / function_spec.name), exclude=ASSET_EXCLUDES
            ),
            layers=self.layers,
            memory_size=function_spec.memory_mb,
            timeout=Duration.seconds(function_spec.timeout_s),
            environment=self._environment(function_spec),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
        )

        self.table.grant_read_write_data(function)
        for queue_name in function_spec.publishes_to:
            self.queues[queue_name].grant_send_messages(function)
        if function_spec.needs_provider:
            self.provider_secret.grant_read(function)
        if function_spec.uses_uploads:
            self.uploads.grant_read_write(function)
        if function_spec.watches_dead_letters:
            for dlq in self.dead_letter_queues.values():
                dlq.grant(function, "sqs:GetQueueAttributes")

        if function_spec.routes:
            integration = HttpLambdaIntegration(f"{construct_id}Integration", function)
            for route in function_spec.routes:
                self.http_api.add_routes(
                    path=route.path,
                    methods=[apigwv2.HttpMethod[route.method]],
                    integration=integration,
                )

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
                description=f"Runs {function_spec.name} on {function_spec.schedule.expression}.",
                schedule=events.Schedule.expression(function_spec.schedule.expression),
                targets=[events_targets.LambdaFunction(function)],
            )
        return function

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.http_api.api_endpoint)
        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "UploadsBucket", value=self.uploads.bucket_name)
        for name, queue in self.queues.items():
            CfnOutput(self, f"{pascal(name)}QueueUrl", value=queue.queue_url)


def _check_spec() -> None:
    """Fails the synth on wiring AWS would reject or that would redeliver messages early."""
    queues = {q.name: q for q in spec.QUEUES}
    if spec.UPLOADS.notify_queue not in queues:
        raise ValueError(f"bucket {spec.UPLOADS.name} notifies unknown queue {spec.UPLOADS.notify_queue!r}")
    for function_spec in spec.FUNCTIONS:
        for queue_name in function_spec.publishes_to:
            if queue_name not in queues:
                raise ValueError(f"{function_spec.name} publishes to unknown queue {queue_name!r}")
        trigger = function_spec.queue
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
