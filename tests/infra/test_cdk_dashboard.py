"""The dashboard's hosting (private bucket, CloudFront with OAC, headers, SPA fallback, logs), its
runtime config.json, and the operators' Cognito user pool."""

from __future__ import annotations

from infra.stack import DASHBOARD_CONFIG_FILE
from tests.infra.cfn import (
    BLOCK_ALL_PUBLIC_ACCESS,
    S3_MANAGED_ENCRYPTION,
    as_list,
    get_att,
    join,
    ref,
)
from tests.infra.conftest import DEV_EXTRA_ORIGIN

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"


def distribution_config(synth) -> dict:
    return synth.props(synth.stack.distribution)["DistributionConfig"]


def dashboard_url(synth) -> dict:
    return join("https://", get_att(synth.logical_id(synth.stack.distribution), "DomainName"))


# --- bucket and distribution --------------------------------------------------------------------


def test_dashboard_bucket_is_private_encrypted_tls_only_and_logged(synth):
    bucket_id = synth.logical_id(synth.stack.dashboard_bucket)
    bucket = synth.resources[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == BLOCK_ALL_PUBLIC_ACCESS
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == S3_MANAGED_ENCRYPTION
    assert bucket["LoggingConfiguration"] == {
        "DestinationBucketName": ref(synth.logical_id(synth.stack.access_logs)), "LogFilePrefix": "s3/dashboard/"}
    assert "WebsiteConfiguration" not in bucket

    (policy,) = [p["Properties"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == ref(bucket_id)]
    statements = policy["PolicyDocument"]["Statement"]
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [get_att(bucket_id, "Arn"), join(get_att(bucket_id, "Arn"), "/*")],
    } in statements
    # Only CloudFront, signing as this distribution, may read the files (origin access control);
    # in dev, CDK's handler that empties the bucket when the stack goes may also list and delete.
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    reads = [s for s in allowed if "s3:GetObject" in as_list(s["Action"])]
    emptying = [s for s in allowed if s not in reads]
    assert [s["Principal"]["AWS"]["Fn::GetAtt"][0] for s in emptying] == [
        "CustomS3AutoDeleteObjectsCustomResourceProviderRole3B1BD092"]
    assert reads == [{
        "Action": "s3:GetObject",
        "Condition": {"StringEquals": {"AWS:SourceArn": join(
            "arn:", ref("AWS::Partition"), ":cloudfront::", ref("AWS::AccountId"), ":distribution/",
            ref(synth.logical_id(synth.stack.distribution)))}},
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Resource": join(get_att(bucket_id, "Arn"), "/*"),
    }]


def test_cloudfront_reads_the_bucket_through_origin_access_control_not_an_identity(synth):
    config = distribution_config(synth)
    (origin,) = config["Origins"]
    ((oac_id, oac),) = synth.of_type("AWS::CloudFront::OriginAccessControl").items()

    assert origin["DomainName"] == get_att(synth.logical_id(synth.stack.dashboard_bucket), "RegionalDomainName")
    assert origin["OriginAccessControlId"] == get_att(oac_id, "Id")
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningProtocol"] == "sigv4"
    assert synth.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}


def test_viewers_are_sent_to_https_and_config_json_is_never_cached(synth):
    config = distribution_config(synth)
    headers = ref(synth.logical_id(synth.stack.dashboard_headers))
    default = config["DefaultCacheBehavior"]
    (config_behavior,) = config["CacheBehaviors"]

    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert default["ResponseHeadersPolicyId"] == headers
    assert default["AllowedMethods"] == ["GET", "HEAD"]
    assert config_behavior["PathPattern"] == "/config.json"
    assert config_behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config_behavior["CachePolicyId"] == CACHING_DISABLED
    assert config_behavior["ResponseHeadersPolicyId"] == headers
    assert config["DefaultRootObject"] == "index.html"


def test_any_path_the_app_routes_itself_gets_index_html(synth):
    assert distribution_config(synth)["CustomErrorResponses"] == [
        {"ErrorCachingMinTTL": 0, "ErrorCode": 403, "ResponseCode": 200, "ResponsePagePath": "/index.html"},
        {"ErrorCachingMinTTL": 0, "ErrorCode": 404, "ResponseCode": 200, "ResponsePagePath": "/index.html"},
    ]


def test_cloudfront_access_logs_go_to_the_log_bucket(synth):
    assert distribution_config(synth)["Logging"] == {
        "Bucket": get_att(synth.logical_id(synth.stack.access_logs), "RegionalDomainName"),
        "Prefix": "cloudfront/dashboard/",
    }
    logs_bucket = synth.props(synth.stack.access_logs)
    # CloudFront's standard logs are written with an ACL: object-writer ownership, never public.
    assert logs_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    assert logs_bucket["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert logs_bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90


def test_security_headers(synth):
    policy = synth.props(synth.stack.dashboard_headers)["ResponseHeadersPolicyConfig"]
    headers = policy["SecurityHeadersConfig"]
    assert policy["Name"] == "sendline-dev-dashboard-headers"
    assert headers["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": True, "Override": True}
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert headers["ContentSecurityPolicy"]["Override"] is True


def test_the_content_security_policy_lets_the_dashboard_call_the_api_cognito_and_s3_only(synth):
    csp = synth.props(synth.stack.dashboard_headers)["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    region, account = ref("AWS::Region"), ref("AWS::AccountId")
    assert csp == join(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self' https://*.execute-api.", region,
        ".amazonaws.com https://cognito-idp.", region,
        ".amazonaws.com https://sendline-dev-", account, ".auth.", region,
        ".amazoncognito.com https://*.s3.amazonaws.com https://*.s3.", region,
        ".amazonaws.com; form-action 'self' https://sendline-dev-", account, ".auth.", region,
        ".amazoncognito.com; frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
    )


# --- what is deployed into the bucket --------------------------------------------------------------


def deployments(synth) -> dict[str, dict]:
    return {d.node.id: synth.resources[synth.stack.get_logical_id(d.node.find_child("CustomResource").node.default_child)]
            ["Properties"] for d in synth.stack.dashboard_deployments}


def test_config_json_carries_the_api_url_and_the_sign_in_settings_uncached(synth):
    config = deployments(synth)["DashboardConfig"]
    stack = synth.stack
    markers = config["SourceMarkers"]
    assert len(markers) == 1
    # Each deploy-time value is written into the file, quoted, when the deployment runs.
    values = [value["Fn::Join"][1] for value in markers[0].values()]

    assert ['"', get_att(synth.logical_id(stack.http_api), "ApiEndpoint"), '"'] in values
    assert ['"', ref(synth.logical_id(stack.user_pool)), '"'] in values
    assert ['"', ref(synth.logical_id(stack.user_pool_client)), '"'] in values
    assert ['"', ref("AWS::Region"), '"'] in values
    assert ['"https://sendline-dev-', ref("AWS::AccountId"), ".auth.", ref("AWS::Region"),
            '.amazoncognito.com"'] in values
    assert len(values) == 5
    assert config["DestinationBucketName"] == ref(synth.logical_id(stack.dashboard_bucket))
    assert config["Prune"] is False
    assert config["SystemMetadata"] == {"cache-control": "no-cache"}
    assert stack.dashboard_config().keys() == {
        "apiUrl", "region", "stage", "userPoolId", "userPoolClientId", "cognitoDomain"}
    assert stack.dashboard_config()["stage"] == "dev"


def test_the_built_dashboard_is_deployed_beside_config_json_and_invalidated(synth):
    files = deployments(synth)["DashboardFiles"]
    assert files["DestinationBucketName"] == ref(synth.logical_id(synth.stack.dashboard_bucket))
    assert files["Prune"] is True
    # Pruning must not delete config.json, which the other deployment writes.
    assert files["Exclude"] == [DASHBOARD_CONFIG_FILE]
    assert files["DistributionId"] == ref(synth.logical_id(synth.stack.distribution))
    assert files["DistributionPaths"] == ["/*"]


def test_without_a_built_dashboard_only_config_json_is_deployed(synth_prod):
    assert list(deployments(synth_prod)) == ["DashboardConfig"]
    assert synth_prod.stack.dashboard_config()["stage"] == "prod"


# --- operators' sign-in ----------------------------------------------------------------------------


def test_operators_are_created_by_an_administrator_with_strong_passwords_and_mfa(each_stage):
    pool = each_stage.props(each_stage.stack.user_pool)
    stage = each_stage.stack.stage.name
    assert pool["UserPoolName"] == f"sendline-{stage}-operators"
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert pool["Policies"] == {"PasswordPolicy": {
        "MinimumLength": 14, "RequireLowercase": True, "RequireNumbers": True, "RequireSymbols": True,
        "RequireUppercase": True, "TemporaryPasswordValidityDays": 3}}
    assert pool["MfaConfiguration"] == "ON"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["UserPoolTier"] == "PLUS"
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["DeletionProtection"] == ("ACTIVE" if stage == "prod" else "INACTIVE")


def test_the_dashboard_client_is_public_and_signs_in_by_srp_or_code_with_pkce(synth):
    client = synth.props(synth.stack.user_pool_client)
    redirects = [join("https://", get_att(synth.logical_id(synth.stack.distribution), "DomainName"), "/"),
                 f"{DEV_EXTRA_ORIGIN}/"]
    assert client["GenerateSecret"] is False
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["CallbackURLs"] == redirects
    assert client["LogoutURLs"] == redirects
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["UserPoolId"] == ref(synth.logical_id(synth.stack.user_pool))


def test_the_hosted_sign_in_domain_is_named_for_the_stage_and_account(synth):
    domain = synth.props(synth.stack.cognito_domain)
    assert domain["Domain"] == join("sendline-dev-", ref("AWS::AccountId"))
    assert domain["UserPoolId"] == ref(synth.logical_id(synth.stack.user_pool))
