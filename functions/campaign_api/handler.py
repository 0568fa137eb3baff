"""Operator API for bulk sending: brands, sending numbers, templates, contact lists and their
imports, campaigns, account settings, alerts and quick send."""

from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from sendline import config, http, runtime
from sendline.domain.clock import utcnow
from sendline.services import alerts, campaigns, catalog, contact_lists, quick_send, settings

config.validate_at_cold_start(config.store_settings, config.queue_settings, config.api_settings,
                              config.uploads_settings)
logger = Logger()
tracer = Tracer(patch_modules=["boto3"])
metrics = Metrics()
app = http.make_resolver()



def _ok(status, body):
    return http.json_response(status, body)


def _operator_body():
    http.require_operator(app)
    return http.json_body(app)


# -- brands, numbers, templates ---------------------------------------------------------------
@app.post("/v1/brands")
def create_brand():
    return _ok(201, catalog.create_brand(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/brands")
def brands():
    http.require_operator(app)
    return _ok(200, {"brands": catalog.list_brands(runtime.records())})


@app.get("/v1/brands/<brand_id>")
def brand(brand_id: str):
    http.require_operator(app)
    return _ok(200, catalog.get_brand(runtime.records(), brand_id))


@app.patch("/v1/brands/<brand_id>")
def update_brand(brand_id: str):
    return _ok(200, catalog.update_brand(runtime.records(), brand_id, _operator_body(), utcnow()))


@app.delete("/v1/brands/<brand_id>")
def delete_brand(brand_id: str):
    http.require_operator(app)
    return _ok(200, catalog.delete_brand(runtime.records(), brand_id))


@app.post("/v1/numbers")
def add_number():
    return _ok(201, catalog.add_number(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/numbers")
def numbers():
    http.require_operator(app)
    query = app.current_event.query_string_parameters or {}
    return _ok(200, {"numbers": catalog.list_numbers(runtime.records(), query.get("brand_id"), query.get("pool"))})


@app.get("/v1/numbers/<number>")
def number(number: str):
    http.require_operator(app)
    return _ok(200, catalog.get_number(runtime.records(), unquote(number)))


@app.patch("/v1/numbers/<number>")
def update_number(number: str):
    return _ok(200, catalog.update_number(runtime.records(), unquote(number), _operator_body(), utcnow()))


@app.delete("/v1/numbers/<number>")
def delete_number(number: str):
    http.require_operator(app)
    return _ok(200, catalog.delete_number(runtime.records(), unquote(number)))


@app.post("/v1/templates")
def create_template():
    return _ok(201, catalog.create_template(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/templates")
def templates():
    http.require_operator(app)
    archived = (app.current_event.get_query_string_value("archived") or "").lower() == "true"
    return _ok(200, {"templates": catalog.list_templates(runtime.records(), include_archived=archived)})


@app.get("/v1/templates/<template_id>")
def template(template_id: str):
    http.require_operator(app)
    return _ok(200, catalog.get_template(runtime.records(), template_id))


@app.patch("/v1/templates/<template_id>")
def update_template(template_id: str):
    return _ok(200, catalog.update_template(runtime.records(), template_id, _operator_body(), utcnow()))


# -- contact lists and imports ------------------------------------------------------------------
@app.post("/v1/contact-lists")
def create_list():
    return _ok(201, contact_lists.create_list(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/contact-lists")
def lists():
    http.require_operator(app)
    return _ok(200, {"lists": contact_lists.list_lists(runtime.records())})


@app.get("/v1/contact-lists/<list_id>")
def contact_list(list_id: str):
    http.require_operator(app)
    return _ok(200, contact_lists.get_list(runtime.records(), list_id))


@app.get("/v1/contact-lists/<list_id>/contacts")
def contacts(list_id: str):
    http.require_operator(app)
    limit = http.int_param(app, "limit", default=100, low=1, high=500)
    after = app.current_event.get_query_string_value("after")
    return _ok(200, contact_lists.contacts_page(runtime.records(), list_id, after, limit))



@app.post("/v1/contact-lists/<list_id>/imports")
def start_import(list_id: str):
    http.require_operator(app)
    filename = app.current_event.get_query_string_value("filename")
    record = contact_lists.start_import(runtime.records(), runtime.uploads(), list_id, utcnow(),
                                        body=http.csv_body(app, "files over 5 MB go to the upload URL: post without a body"), filename=filename)
    return _ok(202, record)


@app.get("/v1/contact-lists/<list_id>/imports")
def imports(list_id: str):
    http.require_operator(app)
    return _ok(200, {"imports": contact_lists.list_imports(runtime.records(), list_id)})


@app.get("/v1/imports/<import_id>")
def get_import(import_id: str):
    http.require_operator(app)
    return _ok(200, contact_lists.get_import(runtime.records(), import_id))


@app.get("/v1/imports/<import_id>/report.csv")
def import_report(import_id: str):
    http.require_operator(app)
    body, url = contact_lists.report_csv(runtime.records(), runtime.uploads(), import_id)
    if url:
        return Response(status_code=303, headers={"Location": url}, body="")
    return http.csv_download(body.decode("utf-8"), f"import-{import_id}-report.csv")


# -- campaigns --------------------------------------------------------------------------------
@app.post("/v1/campaigns")
def create_campaign():
    return _ok(201, campaigns.create_campaign(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/campaigns")
def list_campaigns():
    caller = http.require_operator_or_api_key(app)
    records = runtime.records()
    found = [{**c, "progress": campaigns.progress(records, c)} for c in campaigns.list_campaigns(records)]
    return http.json_response(200, {"campaigns": [campaigns.public_view(c) for c in found]}, caller.headers)


@app.get("/v1/campaigns/<campaign_id>")
def campaign(campaign_id: str):
    caller = http.require_operator_or_api_key(app)
    return http.json_response(200, campaigns.campaign_view(runtime.records(), campaign_id), caller.headers)


@app.patch("/v1/campaigns/<campaign_id>")
def update_campaign(campaign_id: str):
    return _ok(200, campaigns.update_campaign(runtime.records(), campaign_id, _operator_body(), utcnow()))


@app.get("/v1/campaigns/<campaign_id>/preview")
def preview(campaign_id: str):
    http.require_operator(app)
    return _ok(200, campaigns.preview(runtime.records(), campaign_id))


@app.get("/v1/campaigns/<campaign_id>/messages")
def campaign_messages(campaign_id: str):
    http.require_operator(app)
    limit = http.int_param(app, "limit", default=50, low=1, high=200)
    return _ok(200, {"messages": campaigns.recent_messages(runtime.records(), campaign_id, limit)})


@app.post("/v1/campaigns/<campaign_id>/launch")
def launch(campaign_id: str):
    http.require_operator(app)
    body = http.json_body(app) if (app.current_event.body or "").strip() else {}
    return _ok(200, campaigns.launch_campaign(runtime.records(), campaign_id, body, utcnow()))


@app.post("/v1/campaigns/<campaign_id>/pause")
def pause(campaign_id: str):
    http.require_operator(app)
    return _ok(200, campaigns.pause_campaign(runtime.records(), campaign_id, utcnow()))


@app.post("/v1/campaigns/<campaign_id>/resume")
def resume(campaign_id: str):
    http.require_operator(app)
    return _ok(200, campaigns.resume_campaign(runtime.records(), campaign_id, utcnow()))


@app.post("/v1/campaigns/<campaign_id>/cancel")
def cancel(campaign_id: str):
    http.require_operator(app)
    return _ok(200, campaigns.cancel_campaign(runtime.records(), campaign_id, utcnow()))


# -- settings, alerts ---------------------------------------------------------------------------
@app.get("/v1/settings")
def get_settings():
    http.require_operator(app)
    return _ok(200, settings.current_settings(runtime.records()).model_dump())


@app.patch("/v1/settings")
def update_settings():
    return _ok(200, settings.update_settings(runtime.records(), _operator_body(), utcnow()))


@app.get("/v1/alerts")
def list_alerts():
    http.require_operator(app)
    return _ok(200, {"alerts": alerts.list_alerts(runtime.records())})


@app.post("/v1/alerts/<alert_id>/acknowledge")
def acknowledge(alert_id: str):
    http.require_operator(app)
    return _ok(200, alerts.acknowledge(runtime.records(), alert_id, utcnow()))


# -- quick send ---------------------------------------------------------------------------------
@app.post("/v1/messages")
def send_one():
    return _ok(202, quick_send.quick_send(runtime.records(), runtime.send_queue(), _operator_body(), utcnow()))


@app.post("/v1/messages/preview")
def preview_body():
    caller = http.require_operator_or_api_key(app)
    return http.json_response(200, quick_send.preview_body(http.json_body(app)), caller.headers)


@app.get("/v1/messages/<message_id>")
def message(message_id: str):
    http.require_operator(app)
    return _ok(200, quick_send.message_view(runtime.records(), unquote(message_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
