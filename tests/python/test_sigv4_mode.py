"""`--auth sigv4`: real signature verification (issue 2 §1-2, security.md §1.4)."""

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ServerProcess,
    assert_framework_error,
    make_client,
    raw_request,
    sign_headers,
    signed_request,
    unique_alias,
    unsigned_request,
)

AK, SK, ACCOUNT = "AKIDEXAMPLE1", "secret1", "111111111111"
AK2, SK2, ACCOUNT2 = "AKIDFROMFILE", "filesecret/with+chars", "222222222222"


@pytest.fixture(scope="module")
def sv(tmp_path_factory):
    work = tmp_path_factory.mktemp("sigv4")
    creds = work / "credentials"
    creds.write_text(f"# test credentials\n\n{AK2}:{SK2}:{ACCOUNT2}\n")
    srv = ServerProcess(
        work,
        extra_args=["--auth", "sigv4", "--access-key", f"{AK}:{SK}:{ACCOUNT}", "--credentials-file", str(creds)],
        name="sigv4",
    ).start()
    yield srv
    assert srv.stop() == 0


def _client(url, ak=AK, sk=SK, region="us-east-1"):
    c = make_client(url, access_key=ak, secret=sk, region=region, max_attempts=3)  # standard retry mode, 3 attempts
    c.attempts = 0

    def count(**kwargs):
        c.attempts += 1

    c.meta.events.register("before-send.workmail", count)
    return c


def test_right_key_works_and_maps_to_account(sv):
    c = _client(sv.url)
    oid = c.create_organization(Alias=unique_alias())["OrganizationId"]
    d = c.describe_organization(OrganizationId=oid)
    assert d["ARN"] == f"arn:aws:workmail:us-east-1:{ACCOUNT}:organization/{oid}"
    assert c.attempts == 2


def test_credentials_file_key_works(sv):
    c = _client(sv.url, ak=AK2, sk=SK2, region="eu-west-3")
    oid = c.create_organization(Alias=unique_alias())["OrganizationId"]
    assert c.describe_organization(OrganizationId=oid)["ARN"].startswith(f"arn:aws:workmail:eu-west-3:{ACCOUNT2}:")


def test_wrong_secret(sv):
    c = _client(sv.url, sk="not-the-secret")
    with pytest.raises(ClientError) as ei:
        c.list_organizations()
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert c.attempts == 1, "botocore retried an auth failure"


def test_unknown_key(sv):
    c = _client(sv.url, ak="AKIDUNKNOWN", sk=SK)
    with pytest.raises(ClientError) as ei:
        c.list_organizations()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert c.attempts == 1


def test_twelve_digit_key_is_not_an_account_in_sigv4_mode(sv):
    c = _client(sv.url, ak="111111111111", sk=SK)
    with pytest.raises(ClientError) as ei:
        c.list_organizations()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_raw_signed_ok(sv):
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret=SK)
    assert r.status == 200, r


def test_body_altered_after_signing(sv):
    r = signed_request(
        sv.url,
        "ListOrganizations",
        {"MaxResults": 5},
        access_key=AK,
        secret=SK,
        mutate=lambda h, b: (h, b.replace(b"5", b"6")),
    )
    assert_framework_error(r, "InvalidSignatureException")


def test_target_altered_after_signing(sv):
    c = _client(sv.url)
    oid = c.create_organization(Alias=unique_alias())["OrganizationId"]
    body = {"OrganizationId": oid, "PersonalAccessTokenId": "abc123"}

    def swap(h, b):
        h = dict(h)
        h["X-Amz-Target"] = "WorkMailService.DeletePersonalAccessToken"
        return h, b

    r = signed_request(sv.url, "GetPersonalAccessTokenMetadata", body, access_key=AK, secret=SK, mutate=swap)
    assert_framework_error(r, "InvalidSignatureException")


def test_target_not_signed_is_rejected(sv):
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret=SK, unsigned_headers=["x-amz-target"])
    assert r.status == 400, r
    assert r.error_type in ("InvalidSignatureException", "IncompleteSignatureException"), r


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew(sv, minutes):
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret=SK, sign_time=t)
    assert_framework_error(r, "InvalidSignatureException")


def test_small_skew_is_accepted(sv):
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret=SK, sign_time=t)
    assert r.status == 200, r


def test_wrong_service_in_scope(sv):
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret=SK, service="dynamodb")
    assert r.status == 400, r
    assert r.error_type == "InvalidSignatureException", r


def test_scope_date_differs_from_x_amz_date(sv):
    hdrs = sign_headers(sv.url, "WorkMailService.ListOrganizations", b"{}", access_key=AK, secret=SK)
    # Move X-Amz-Date by a day; the credential scope date no longer matches (and the signature breaks).
    xd = hdrs["X-Amz-Date"]
    day = dt.datetime.strptime(xd, "%Y%m%dT%H%M%SZ") - dt.timedelta(days=1)
    hdrs["X-Amz-Date"] = day.strftime("%Y%m%dT%H%M%SZ")
    r = raw_request(sv.url, "POST", "/", b"{}", hdrs)
    assert r.status == 400, r
    assert r.error_type in ("InvalidSignatureException", "IncompleteSignatureException"), r


def test_missing_and_garbage_authorization(sv):
    assert_framework_error(unsigned_request(sv.url, "ListOrganizations", {}), "MissingAuthenticationTokenException")
    r = unsigned_request(sv.url, "ListOrganizations", {}, headers={"Authorization": "garbage"})
    assert_framework_error(r, "IncompleteSignatureException")


def test_org_invisible_across_keys_of_different_accounts(sv):
    a = _client(sv.url)
    b = _client(sv.url, ak=AK2, sk=SK2)
    oid = a.create_organization(Alias=unique_alias())["OrganizationId"]
    with pytest.raises(b.exceptions.OrganizationNotFoundException):
        b.describe_organization(OrganizationId=oid)


def test_unknown_key_raw_shape(sv):
    r = signed_request(sv.url, "ListOrganizations", {}, access_key="AKIDUNKNOWN", secret=SK)
    assert_framework_error(r, "UnrecognizedClientException")
    r = signed_request(sv.url, "ListOrganizations", {}, access_key=AK, secret="wrong")
    assert_framework_error(r, "InvalidSignatureException")


def test_non_ascii_body_signature_is_verified(sv):
    """A body with non-ASCII characters passes signature checks and then fails validation, not authentication."""
    c = _client(sv.url)
    oid = c.create_organization(Alias=unique_alias())["OrganizationId"]
    with pytest.raises(ClientError) as ei:
        c.list_personal_access_tokens(OrganizationId=oid, UserId="usér-ü")
    assert ei.value.response["Error"]["Code"] == "InvalidParameterException", ei.value.response
    # DisplayName has no pattern: this one succeeds, signature included.
    uid = c.create_user(OrganizationId=oid, Name="unicodeuser", DisplayName="Zoë 😀 Ünïcode")["UserId"]
    assert c.describe_user(OrganizationId=oid, UserId=uid)["DisplayName"] == "Zoë 😀 Ünïcode"


def test_content_sha256_header(sv):
    import hashlib

    body = b"{}"
    good = hashlib.sha256(body).hexdigest()
    bad = hashlib.sha256(b"something else").hexdigest()
    for value, ok in ((good, True), (bad, False)):
        hdrs = sign_headers(
            sv.url,
            "WorkMailService.ListOrganizations",
            body,
            access_key=AK,
            secret=SK,
            extra_headers={"X-Amz-Content-SHA256": value},
        )
        r = raw_request(sv.url, "POST", "/", body, hdrs)
        if ok:
            assert r.status == 200, r
        else:
            assert r.status == 400 and r.error_type == "InvalidSignatureException", r


def test_other_region_is_separate_state(sv):
    a = _client(sv.url, region="us-east-1")
    b = _client(sv.url, region="ap-southeast-4")
    oid = a.create_organization(Alias=unique_alias())["OrganizationId"]
    with pytest.raises(b.exceptions.OrganizationNotFoundException):
        b.describe_organization(OrganizationId=oid)


def test_boto3_clock_skew_not_retried(sv, monkeypatch):
    import botocore.auth

    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: skewed)
    c = _client(sv.url)
    with pytest.raises(ClientError) as ei:
        c.list_organizations()
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert c.attempts == 1
