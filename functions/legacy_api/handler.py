"""/api.php?action=...: the routes integrators already call, mapped onto the same services."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.errors import FieldProblem, MalformedRequest
from sendline.services import campaigns
from sendline.services.dnc import add_to_dnc, check_dnc
from sendline.services.stats import account_stats

config.validate_at_cold_start(config.store_settings, config.queue_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()

def _ext_lead_submit():
    _, response = http.submit_lead_request(app)
    return response


def _ext_dnc_add():
    _, window = http.api_identity(app)
    added = add_to_dnc(runtime.records(), http.payload(app), "api", utcnow())
    return http.json_response(200, added, window.headers())


def _ext_dnc_check():
    _, window = http.api_identity(app)
    phone = app.current_event.get_query_string_value("phone")
    return http.json_response(200, check_dnc(runtime.records(), phone), window.headers())


def _ext_stats():
    _, window = http.api_identity(app)
    return http.json_response(200, account_stats(runtime.records(), utcnow()), window.headers())


def _ext_campaigns():
    _, window = http.api_identity(app)
    records = runtime.records()
    found = [{**campaigns.public_view(c), "progress": campaigns.progress(records, c)}
             for c in campaigns.list_campaigns(records)]
    return http.json_response(200, {"success": True, "campaigns": found}, window.headers())


def _ext_campaign_status():
    _, window = http.api_identity(app)
    campaign_id = app.current_event.get_query_string_value("campaign_id")
    if not campaign_id:
        raise MalformedRequest(FieldProblem("campaign_id", "is required"))
    view = campaigns.campaign_view(runtime.records(), campaign_id)
    return http.json_response(200, {"success": True, **view}, window.headers())


ACTIONS = {
    "ext_lead_submit": _ext_lead_submit,
    "ext_dnc_add": _ext_dnc_add,
    "ext_dnc_check": _ext_dnc_check,
    "ext_stats": _ext_stats,
    "ext_campaigns": _ext_campaigns,
    "ext_campaign_status": _ext_campaign_status,
}


@app.route("/api.php", method=["GET", "POST"])
def legacy_action():
    action = app.current_event.get_query_string_value("action") or ""
    if action not in ACTIONS:
        reason = f"unknown action; one of {', '.join(ACTIONS)}" if action else "is required"
        raise MalformedRequest(FieldProblem("action", reason))
    return ACTIONS[action]()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
