"""An uploaded contacts file (an S3 event on the imports queue) is streamed into its list."""

import json
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.s3_event import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sendline import config, runtime
from sendline.domain.clock import utcnow
from sendline.services.contact_lists import import_id_from_key, run_import

config.validate_at_cold_start(config.store_settings, config.uploads_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
# A file that fails is a failed record (retried, then dead-lettered, where the dead-letter alarm
# goes off), not a function error: the errors alarm is for the function itself failing.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def import_upload(record: SQSRecord) -> int:
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent":  # S3 sends one when the notification is set up
        return 0
    imported = 0
    for s3_record in S3Event(body).records:
        key = unquote_plus(s3_record.s3.get_object.key)  # S3 events carry keys URL-encoded
        import_id = import_id_from_key(key)
        if import_id is None:
            logger.warning("upload outside an import", extra={"key": key})
            continue
        result = run_import(runtime.records(), runtime.uploads(), import_id, utcnow)
        metrics.add_metric(name="ContactsImported", unit=MetricUnit.Count, value=int(result.get("accepted") or 0))
        imported += 1
    return imported


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return process_partial_response(event=event, record_handler=import_upload, processor=processor, context=context)
