"""The HTTP API: every spec route, who authorizes it, CORS, throttling and access logs.

Expected values come from the spec, so a new route is covered without editing these tests.
"""

from __future__ import annotations

import json

from infra import spec
from infra.stack import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS
from tests.infra.cfn import get_att, join, ref
from tests.infra.conftest import DEV_EXTRA_ORIGIN

ROUTES = [(f, r) for f in spec.FUNCTIONS for r in f.routes]


def route_key(route: spec.Route) -> str:
    return f"{route.method} {route.path}"


def routes_by_key(synth) -> dict[str, dict]:
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()}


def test_every_spec_route_is_one_api_route_with_its_method_and_path(synth):
    # Given the routes in the spec
    expected = sorted(route_key(r) for _, r in ROUTES)

    # When the template's routes are listed
    route_keys = sorted(routes_by_key(synth))

    # Then there is exactly one per spec route, and nothing else
    assert route_keys == expected


def test_every_route_invokes_the_function_the_spec_names(synth):
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")
    function_ids = {synth.function_id(f.name): f.name for f in spec.FUNCTIONS}
    target_of: dict[str, str] = {}

    for key, props in routes_by_key(synth).items():
        prefix, integration_ref = props["Target"]["Fn::Join"][1]
        assert prefix == "integrations/"
        integration = integrations[integration_ref["Ref"]]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        function_logical_id, attribute = integration["IntegrationUri"]["Fn::GetAtt"]
        assert attribute == "Arn"
        target_of[key] = function_ids[function_logical_id]

    assert target_of == {route_key(r): f.name for f, r in ROUTES}


def test_operator_routes_need_a_cognito_token_at_the_gateway_and_the_others_are_checked_in_code(synth):
    (authorizer_logical_id,) = synth.of_type("AWS::ApiGatewayV2::Authorizer")
    authorizer_id = ref(authorizer_logical_id)
    routes = routes_by_key(synth)

    for _, route in ROUTES:
        props = routes[route_key(route)]
        if route.auth == "operator":
            assert (props["AuthorizationType"], props["AuthorizerId"]) == ("JWT", authorizer_id), route_key(route)
        else:
            assert route.auth in ("api_key", "api_key_or_operator", "twilio_signature")
            assert props["AuthorizationType"] == "NONE", route_key(route)
            assert "AuthorizerId" not in props, route_key(route)


def test_the_catch_all_and_the_shared_routes_have_the_expected_authorization(synth):
    routes = routes_by_key(synth)
    assert routes["ANY /v1/{proxy+}"]["AuthorizationType"] == "JWT"
    assert routes["GET /v1/stats"]["AuthorizationType"] == "NONE"  # api_key_or_operator
    assert routes["POST /v1/leads"]["AuthorizationType"] == "NONE"  # api_key
    assert routes["POST /webhooks/twilio/status"]["AuthorizationType"] == "NONE"  # twilio_signature
    assert routes["GET /v1/ops/worker-health"]["AuthorizationType"] == "JWT"


def test_the_authorizer_accepts_tokens_of_the_operators_pool_for_the_dashboard_client(synth):
    (authorizer,) = synth.of_type("AWS::ApiGatewayV2::Authorizer").values()
    props = authorizer["Properties"]
    pool = synth.logical_id(synth.stack.user_pool)
    client = synth.logical_id(synth.stack.user_pool_client)

    assert props["AuthorizerType"] == "JWT"
    assert props["Name"] == "sendline-dev-operators"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["JwtConfiguration"] == {
        "Audience": [ref(client)],
        "Issuer": join("https://cognito-idp.", ref("AWS::Region"), ".amazonaws.com/", ref(pool)),
    }


def test_cors_allows_the_dashboard_origin_and_the_extra_origins_only(synth):
    (api,) = synth.of_type("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    dashboard = join("https://", get_att(synth.logical_id(synth.stack.distribution), "DomainName"))

    assert cors["AllowOrigins"] == [dashboard, DEV_EXTRA_ORIGIN]
    assert "*" not in cors["AllowOrigins"]
    assert cors["AllowHeaders"] == ["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key"]
    assert cors["AllowHeaders"] == list(CORS_ALLOW_HEADERS)
    assert cors["ExposeHeaders"] == ["X-Next-Cursor", "Content-Disposition", "Retry-After", "X-RateLimit-Limit",
                                     "X-RateLimit-Remaining", "X-RateLimit-Reset"]
    assert cors["ExposeHeaders"] == list(CORS_EXPOSE_HEADERS)
    route_methods = {r.method for _, r in ROUTES} - {"ANY"}
    assert set(cors["AllowMethods"]) == route_methods | {"OPTIONS"}
    assert cors["MaxAge"] == 3600


def test_prod_cors_allows_only_the_dashboard_origin(synth_prod):
    (api,) = synth_prod.of_type("AWS::ApiGatewayV2::Api").values()
    dashboard = join("https://", get_att(synth_prod.logical_id(synth_prod.stack.distribution), "DomainName"))
    assert api["Properties"]["CorsConfiguration"]["AllowOrigins"] == [dashboard]
    assert api["Properties"]["Name"] == "sendline-prod-api"


def test_default_stage_deploys_automatically_and_is_throttled(synth):
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 1000,
        "ThrottlingRateLimit": 500,
    }


def test_access_logs_go_to_their_log_group_without_query_strings(synth):
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    log_groups = {
        logical_id: r["Properties"] for logical_id, r in synth.of_type("AWS::Logs::LogGroup").items()
        if r["Properties"].get("LogGroupName") == "/sendline/dev/api-access"
    }
    ((log_group_id, log_group),) = log_groups.items()

    assert settings["DestinationArn"] == get_att(log_group_id, "Arn")
    assert log_group["RetentionInDays"] == 30
    assert json.loads(settings["Format"]) == {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "sourceIp": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    }
    # An integrator may pass its key as ?api_key=: neither the query nor the raw path is logged.
    assert "querystring" not in settings["Format"].lower()
    assert "$context.path" not in settings["Format"]
