"""Every minute: queue the messages whose send time has come (drips, first texts not yet queued)."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, runtime
from sendline.domain.clock import utcnow
from sendline.services.drips import run_due_messages

config.validate_at_cold_start(config.store_settings, config.queue_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    report = run_due_messages(runtime.records(), runtime.send_queue(), utcnow())
    metrics.add_metric(name="DripsQueued", unit=MetricUnit.Count, value=report.queued)
    if report.due:
        logger.info("due messages handled", extra=asdict(report))
    return asdict(report)
