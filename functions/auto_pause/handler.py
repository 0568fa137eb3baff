"""Every minute: pause running campaigns whose error rate passed their threshold."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, runtime
from sendline.domain.clock import utcnow
from sendline.services.auto_pause import check_auto_pause

config.validate_at_cold_start(config.store_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    alerts = check_auto_pause(runtime.records(), utcnow())
    metrics.add_metric(name="CampaignsAutoPaused", unit=MetricUnit.Count, value=len(alerts))
    return {"paused": [a["campaign_id"] for a in alerts]}
