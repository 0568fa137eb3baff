"""Every minute: start due campaigns and release the coming minute's contacts at their pace."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, runtime
from sendline.domain.clock import utcnow
from sendline.services.dispatch import dispatch_tick

config.validate_at_cold_start(config.store_settings, config.queue_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    report = dispatch_tick(runtime.records(), runtime.send_queue(), utcnow())
    metrics.add_metric(name="CampaignTextsReleased", unit=MetricUnit.Count, value=sum(report.released.values()))
    if report.campaigns:
        logger.info("campaigns dispatched", extra=asdict(report))
    return asdict(report)
