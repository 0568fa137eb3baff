"""Reports from the counters: account totals (integrator key or operator token), and the
operators' Command Center, analytics, message log, P&L and balance."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services import billing, message_log, reports
from sendline.services.command_center import command_center
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


PERIOD = ("from", "to")
# Each analytics report: its service and the query parameters it takes.
ANALYTICS = {
    "delivery-trend": (reports.delivery_trend, (*PERIOD, "bucket", *reports.FILTERS)),
    "carriers": (reports.carrier_rates, (*PERIOD, *reports.FILTERS)),
    "heatmap": (reports.heatmap, (*PERIOD, *reports.FILTERS)),
    "creatives": (reports.creative_performance, (*PERIOD, "campaign_id")),
    "error-codes": (reports.error_codes, (*PERIOD, *reports.FILTERS)),
    "numbers": (reports.number_health, (*PERIOD, "brand_id", "threshold")),
    "volume": (reports.volume, (*PERIOD, *reports.FILTERS)),
    "pnl": (billing.profit_and_loss, (*PERIOD, "group")),
}


@app.get("/v1/reports/command-center")
def command_center_figures():
    http.require_operator(app)
    http.query(app, ())
    return http.json_response(200, command_center(runtime.records(), utcnow(), runtime.dead_letters().depths))


def _analytics_route(report, allowed):
    def serve():
        http.require_operator(app)
        return http.json_response(200, report(runtime.records(), http.query(app, allowed), utcnow()))
    return serve


for _name, (_report, _allowed) in ANALYTICS.items():
    app.get(f"/v1/reports/{_name}")(_analytics_route(_report, _allowed))


@app.get("/v1/reports/pnl.csv")
def pnl_export():
    http.require_operator(app)
    report = billing.profit_and_loss(runtime.records(), http.query(app, (*PERIOD, "group")), utcnow())
    return http.csv_download("".join(billing.pnl_csv(report)), f"pnl-by-{report['group']}.csv")


@app.get("/v1/reports/messages")
def message_log_page():
    http.require_operator(app)
    request = message_log.parse_request(http.query(app, message_log.PAGE_PARAMS), utcnow())
    limit = http.int_param(app, "limit", default=message_log.DEFAULT_LIMIT, low=1, high=message_log.MAX_LIMIT)
    return http.json_response(200, message_log.read_page(runtime.records(), request, limit))


@app.get("/v1/reports/messages.csv")
def message_log_export():
    http.require_operator(app)
    request = message_log.parse_request(http.query(app, message_log.EXPORT_PARAMS), utcnow())
    export = message_log.export_csv(runtime.records(), request)
    response = http.csv_download(export, export.filename)
    response.headers.update(export.headers())  # known once the file is written
    return response


@app.get("/v1/billing/balance")
def account_balance():
    http.require_operator(app)
    return http.json_response(200, billing.balance(runtime.records()))


@app.post("/v1/billing/top-ups")
def top_up():
    http.require_operator(app)
    return http.json_response(201, billing.add_top_up(runtime.records(), http.json_body(app), utcnow()))


@app.get("/v1/billing/top-ups")
def top_ups():
    http.require_operator(app)
    return http.json_response(200, {"top_ups": billing.list_top_ups(runtime.records())})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
