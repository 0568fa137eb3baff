"""POST /v1/leads: an integrator posts a lead; it is stored and its first text queued."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, http

config.validate_at_cold_start(config.store_settings, config.queue_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()


@app.post("/v1/leads")
def post_lead():
    result, response = http.submit_lead_request(app)
    metrics.add_metric(name="LeadDuplicate" if result.duplicate else "LeadAccepted", unit=MetricUnit.Count, value=1)
    return response


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
