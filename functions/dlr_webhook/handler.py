"""Twilio webhooks: delivery status callbacks and inbound texts, signature-checked (403 if not)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services.delivery import apply_delivery_status
from sendline.services.inbound import handle_inbound
from sendline.services.settings import current_settings

config.validate_at_cold_start(config.store_settings, config.twilio_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()


@app.post("/webhooks/twilio/status")
def status_callback():
    params = http.twilio_form(app)
    result = apply_delivery_status(runtime.records(), params, utcnow())
    metrics.add_metric(name=f"Receipt_{result.value}", unit=MetricUnit.Count, value=1)
    return Response(status_code=200, content_type="text/plain", body="")


@app.post("/webhooks/twilio/inbound")
def inbound_text():
    params = http.twilio_form(app)
    records = runtime.records()
    settings = current_settings(records).inbound
    result = handle_inbound(records, params, utcnow(),
                            carrier_handles_keywords=settings.carrier_handles_standard_keywords)
    metrics.add_metric(name="InboundText", unit=MetricUnit.Count, value=1)
    logger.info("inbound", extra={"keyword": result.record.get("keyword"), "action": result.record.get("action"),
                                  "replied": bool(result.reply)})
    return Response(status_code=200, content_type="text/xml", body=result.twiml())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
