"""Consumes the sends queue: each record is one message, sent at most once.

A message that must wait (carrier 429/5xx) is made visible again after its backoff and reported
as a batch item failure; a poison message reaches the DLQ after the queue's maxReceiveCount.
A text held back by pacing (its second's sends are spent) is queued again with a short delay
instead, so waiting its turn never counts as a failed receive.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sendline import config, runtime
from sendline.adapters.queue import SendRequest
from sendline.domain.clock import utcnow
from sendline.services.sending import RetryLater, send_message

config.validate_at_cold_start(config.store_settings, config.queue_settings, config.twilio_settings, config.api_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3", "httpx"])
metrics = Metrics()
# Every record failing is still a partial response: each one has its own backoff already set.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def send_one(record: SQSRecord) -> str:
    request = SendRequest.from_body(record.body)
    try:
        result = send_message(runtime.records(), runtime.twilio(), request, utcnow(), runtime.phone_lookups)
    except RetryLater as retry:
        if retry.pacing and not runtime.send_queue().send([request], retry.delay_s):
            metrics.add_metric(name="SendPaced", unit=MetricUnit.Count, value=1)
            return "paced"
        runtime.send_queue().retry_later(record.receipt_handle, retry.delay_s)
        metrics.add_metric(name="SendDeferred", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=f"Send_{result.value}", unit=MetricUnit.Count, value=1)
    return result.value


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return process_partial_response(event=event, record_handler=send_one, processor=processor, context=context)
