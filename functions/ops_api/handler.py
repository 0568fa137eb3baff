"""Operators' view of the workers: Worker Health (queue depths and ages, dead letters, function
errors and throttles) and the dead-letter queues, listed, inspected and re-driven."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services import dead_letters
from sendline.services.worker_health import MAX_WINDOW_MINUTES, WINDOW_MINUTES, worker_health

config.validate_at_cold_start(config.api_settings, runtime.work_queues, runtime.function_names)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
app = http.make_resolver()


@app.get("/v1/ops/worker-health")
def health():
    http.require_operator(app)
    http.query(app, ("window_minutes",), what="route")
    minutes = http.int_param(app, "window_minutes", default=WINDOW_MINUTES, low=1, high=MAX_WINDOW_MINUTES)
    figures = worker_health(runtime.work_queues(), runtime.metrics(), runtime.function_names(), utcnow(), minutes)
    return http.json_response(200, figures)


@app.get("/v1/ops/dead-letters")
def dead_letter_queues():
    http.require_operator(app)
    http.query(app, (), what="route")
    return http.json_response(200, dead_letters.list_dead_letters(runtime.work_queues()))


@app.get("/v1/ops/dead-letters/<queue>")
def inspect(queue: str):
    http.require_operator(app)
    http.query(app, ("limit",), what="route")
    limit = http.int_param(app, "limit", default=dead_letters.INSPECT_LIMIT, low=1, high=dead_letters.MAX_INSPECT_LIMIT)
    return http.json_response(200, dead_letters.inspect_dead_letters(runtime.work_queues(), queue, limit))


@app.post("/v1/ops/dead-letters/<queue>/redrive")
def redrive(queue: str):
    http.require_operator(app)
    http.query(app, (), what="route")
    body = http.json_body(app) if http.body_text(app).strip() else {}
    moved = dead_letters.redrive_dead_letters(
        runtime.work_queues(), queue, dead_letters.redrive_limit(body),
        time_left_s=lambda: app.lambda_context.get_remaining_time_in_millis() / 1000)
    return http.json_response(200, moved)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
