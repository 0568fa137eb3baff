"""POST /v1/leads: an integrator posts a lead; it is stored and its first text queued."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services.leads import submit_lead

config.validate_at_cold_start(config.store_settings, config.queue_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()


@app.post("/v1/leads")
def post_lead():
    identity, window = http.api_identity(app)
    result = submit_lead(runtime.records(), runtime.send_queue(), http.payload(app), identity,
                         http.request_origin(app), utcnow())
    metrics.add_metric(name="LeadDuplicate" if result.duplicate else "LeadAccepted", unit=MetricUnit.Count, value=1)
    return http.json_response(200, result.to_response(), window.headers())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
