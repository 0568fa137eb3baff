"""Operator API: lead flows, leads, integrator API keys and the DNC list (Bearer operator token)."""

from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from pydantic import ValidationError

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.errors import ValidationFailed
from sendline.services import flows, inbound
from sendline.services.api_keys import issue_api_key, list_api_keys, revoke_api_key
from sendline.services.consent import consent_csv, consent_record
from sendline.services.dnc import add_to_dnc, check_dnc, export_csv, remove_from_dnc, search_dnc
from sendline.services.dnc_imports import list_dnc_imports, start_dnc_import
from sendline.services.leads import lead_view
from sendline.services.validation import problems_from

config.validate_at_cold_start(config.store_settings, config.queue_settings, config.api_settings,
                              config.uploads_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])  # httpx stays unloaded: only send_worker calls the carrier
metrics = Metrics()
app = http.make_resolver()



@app.post("/v1/flows")
def create_flow():
    http.require_operator(app)
    body = http.json_body(app)
    try:
        draft = flows.FlowDraft.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(problems_from(exc)) from None
    flow = flows.create_flow(runtime.records(), draft, utcnow())
    return http.json_response(201, {"success": True, "flow_id": flow["flow_id"], "flow": flow})


@app.get("/v1/flows")
def list_flows():
    http.require_operator(app)
    return http.json_response(200, {"flows": flows.list_flows(runtime.records())})


@app.get("/v1/flows/<flow_id>")
def get_flow(flow_id: str):
    http.require_operator(app)
    return http.json_response(200, flows.flow_with_stats(runtime.records(), flow_id, utcnow()))


@app.post("/v1/flows/<flow_id>/pause")
def pause_flow(flow_id: str):
    http.require_operator(app)
    return http.json_response(200, flows.pause_flow(runtime.records(), flow_id, utcnow()))


@app.post("/v1/flows/<flow_id>/resume")
def resume_flow(flow_id: str):
    http.require_operator(app)
    return http.json_response(200, flows.resume_flow(runtime.records(), flow_id, utcnow()))


@app.get("/v1/flows/<flow_id>/activity")
def flow_activity(flow_id: str):
    http.require_operator(app)
    limit = http.int_param(app, "limit", default=50, low=1, high=200)
    return http.json_response(200, {"activity": flows.flow_activity(runtime.records(), flow_id, limit)})


@app.get("/v1/leads/<lead_id>")
def get_lead(lead_id: str):
    http.require_operator(app)
    return http.json_response(200, lead_view(runtime.records(), lead_id))


@app.post("/v1/api-keys")
def create_api_key():
    http.require_operator(app)
    body = http.json_body(app)
    name = body.get("name") if isinstance(body, dict) else None
    return http.json_response(201, issue_api_key(runtime.records(), name))


@app.get("/v1/api-keys")
def api_keys():
    http.require_operator(app)
    return http.json_response(200, {"api_keys": list_api_keys(runtime.records())})


@app.delete("/v1/api-keys/<key_id>")
def revoke_key(key_id: str):
    http.require_operator(app)
    return http.json_response(200, revoke_api_key(runtime.records(), unquote(key_id), utcnow()))


@app.post("/v1/dnc")
def dnc_add():
    caller = http.require_operator_or_api_key(app)
    added = add_to_dnc(runtime.records(), http.payload(app), caller.kind, utcnow())
    return http.json_response(200, added, caller.headers)


@app.get("/v1/dnc/<phone>")
def dnc_check(phone: str):
    caller = http.require_operator_or_api_key(app)
    return http.json_response(200, check_dnc(runtime.records(), unquote(phone)), caller.headers)


@app.delete("/v1/dnc/<phone>")
def dnc_remove(phone: str):
    http.require_operator(app)
    return http.json_response(200, remove_from_dnc(runtime.records(), unquote(phone)))


@app.get("/v1/dnc")
def dnc_search():
    http.require_operator(app)
    limit = http.int_param(app, "limit", default=50, low=1, high=200)
    query = app.current_event.query_string_parameters or {}
    return http.json_response(200, search_dnc(runtime.records(), query, limit))


@app.post("/v1/dnc/imports")
def dnc_import():
    http.require_operator(app)
    body = http.csv_body(app, "files over 5 MB go to the upload URL: post without a body")
    filename = app.current_event.get_query_string_value("filename")
    return http.json_response(202, start_dnc_import(runtime.records(), runtime.uploads(), utcnow(), body, filename))


@app.get("/v1/dnc/imports")
def dnc_imports():
    http.require_operator(app)
    return http.json_response(200, {"imports": list_dnc_imports(runtime.records())})


@app.get("/v1/dnc/export.csv")
def dnc_export():
    http.require_operator(app)
    filename = f"dnc-{utcnow():%Y-%m-%d}.csv"
    return http.csv_download(export_csv(runtime.records()), filename)



# -- inbound texts and consent --------------------------------------------------------------------
@app.get("/v1/inbound")
def inbound_list():
    http.require_operator(app)
    query = app.current_event.query_string_parameters or {}
    wanted = inbound.parse_filter(query, utcnow())
    limit = http.int_param(app, "limit", default=50, low=1, high=200)
    show = (query.get("show_phones") or "").lower() in ("1", "true", "yes")
    return http.json_response(200, inbound.list_inbound(runtime.records(), wanted, limit=limit,
                                                        cursor=query.get("cursor"), show_phones=show))


@app.get("/v1/inbound/by-number")
def inbound_counts():
    http.require_operator(app)
    wanted = inbound.parse_filter(app.current_event.query_string_parameters or {}, utcnow())
    return http.json_response(200, inbound.inbound_by_number(runtime.records(), wanted))


@app.get("/v1/consent/<phone>")
def consent(phone: str):
    http.require_operator(app)
    record = consent_record(runtime.records(), unquote(phone))
    if (app.current_event.get_query_string_value("format") or "").lower() == "csv":
        return http.csv_download(consent_csv(record), f"consent-{record['phone'][1:]}.csv")
    return http.json_response(200, record)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
