"""GET /v1/stats: account totals from the counters (integrator key or operator token)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services.stats import account_stats

config.validate_at_cold_start(config.store_settings, config.api_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()


@app.get("/v1/stats")
def stats():
    caller = http.require_operator_or_api_key(app)
    return http.json_response(200, account_stats(runtime.records(), utcnow()), caller.headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
