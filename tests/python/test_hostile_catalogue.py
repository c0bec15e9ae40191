"""Hostile-input catalogue (issue 5): distinct hostile or malformed requests, each with the exact error it must get,
then proof that the server is still healthy. Web CSRF cases live with the cookie-session work, not here.

Every case names the status, the `__type` and (where the wording is part of the contract) the message. `raw_request`
already fails any case that makes the server answer a 5xx.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from conftest import (
    JSON_CT,
    SESSION_401,
    VERIFY_401,
    RawResponse,
    make_client,
    make_pat_org,
    new_account,
    raw_request,
    sign_headers,
    signed_request,
    unsigned_request,
    webapp,
)

BAD_TOKEN = "The NextToken is invalid or has expired."
FAKE_ORG = "m-" + "0" * 32


@dataclass
class World:
    url: str
    acct: str
    org: object  # PatOrg with users alice and bob, signed in
    other_acct: str
    other_org: object  # PatOrg in another account
    alice_pat: dict
    bob_pat: dict
    deleted_pat: dict
    other_pat: dict
    list_orgs_token: str
    list_users_token: str
    list_pats_token: str


@pytest.fixture(scope="module")
def world(url) -> World:
    acct = new_account()
    org = make_pat_org(url, account=acct, users=("alice", "bob", "carol"))
    client = org.client
    # Enough organizations and users for a second page at MaxResults=1.
    client.create_organization(Alias=f"hx{uuid.uuid4().hex[:12]}")
    alice, bob = org.users["alice"], org.users["bob"]
    alice_pat = alice.create_pat("a1")
    alice.create_pat("a2")
    bob_pat = bob.create_pat("b1")
    deleted = alice.create_pat("gone")
    assert alice.delete_pat(deleted["PersonalAccessTokenId"]).status == 204
    other_acct = new_account()
    other = make_pat_org(url, account=other_acct, users=("alice",))
    other_pat = other.users["alice"].create_pat("o1")
    lo = client.list_organizations(MaxResults=1)["NextToken"]
    lu = client.list_users(OrganizationId=org.org_id, MaxResults=1)["NextToken"]
    lp = client.list_personal_access_tokens(OrganizationId=org.org_id, MaxResults=1)["NextToken"]
    return World(url, acct, org, other_acct, other, alice_pat, bob_pat, deleted, other_pat, lo, lu, lp)


def api(w: World, op: str, body, **kw) -> RawResponse:
    kw.setdefault("account", w.acct)
    return signed_request(w.url, op, body, **kw)


def raw_socket(url: str, head: bytes, body: bytes = b"", timeout: float = 10) -> RawResponse:
    """Send bytes exactly as given (duplicated or non-UTF-8 headers that http.client refuses to write)."""
    p = urllib.parse.urlsplit(url)
    with socket.create_connection((p.hostname, p.port), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    r = RawResponse(status, headers, rest)
    assert r.status < 500, r
    return r


def signed_head(w: World, op: str, body: bytes, extra: list[tuple[bytes, bytes]], drop: tuple[str, ...] = ()) -> bytes:
    """A signed POST / as raw bytes, with extra header lines appended after signing."""
    hdrs = sign_headers(w.url, f"WorkMailService.{op}", body, access_key=w.acct)
    lines = [b"POST / HTTP/1.1"]
    for k, v in hdrs.items():
        if k.lower() in drop:
            continue
        lines.append(k.encode() + b": " + v.encode())
    lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    for k, v in extra:
        lines.append(k + b": " + v)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class Case:
    name: str
    send: Callable[[World], RawResponse]
    status: int
    type: str | None
    message: str | None = None  # exact message, when it is part of the contract
    body: dict | None = None  # exact body (web API)


def err_message(r: RawResponse) -> str | None:
    doc = r.json()
    return doc.get("Message", doc.get("message"))


def o(w: World) -> str:
    return w.org.org_id


CASES: list[Case] = [
    # ---- wrong types and nulls (SerializationException: the body does not match the shape) ----
    Case("max_results_string", lambda w: api(w, "ListOrganizations", {"MaxResults": "10"}), 400, "SerializationException"),
    Case("max_results_float", lambda w: api(w, "ListOrganizations", {"MaxResults": 1.5}), 400, "SerializationException"),
    Case("max_results_bool", lambda w: api(w, "ListOrganizations", {"MaxResults": True}), 400, "SerializationException"),
    Case("max_results_huge", lambda w: api(w, "ListOrganizations", '{"MaxResults": 99999999999999999999999}'), 400, "SerializationException"),
    Case("org_id_number", lambda w: api(w, "DescribeOrganization", {"OrganizationId": 5}), 400, "SerializationException"),
    Case("org_id_object", lambda w: api(w, "DescribeOrganization", {"OrganizationId": {"a": 1}}), 400, "SerializationException"),
    Case("org_id_array", lambda w: api(w, "DescribeOrganization", {"OrganizationId": [o(w)]}), 400, "SerializationException"),
    Case("scopes_wrong_shape", lambda w: api(w, "PutIdentityProviderConfiguration", {"OrganizationId": o(w), "AuthenticationMode": "IDENTITY_PROVIDER_AND_DIRECTORY", "IdentityCenterConfiguration": "arn", "PersonalAccessTokenConfiguration": {"Status": "ACTIVE"}}), 400, "SerializationException"),
    Case("org_id_null", lambda w: api(w, "DescribeOrganization", {"OrganizationId": None}), 400, "InvalidParameterException"),
    Case("alias_null", lambda w: api(w, "CreateOrganization", {"Alias": None}), 400, "InvalidParameterException"),
    Case("password_null", lambda w: api(w, "CreateUser", {"OrganizationId": o(w), "Name": "nul1", "DisplayName": "n", "Password": None}), 200, None),
    Case("body_array", lambda w: api(w, "ListOrganizations", "[]"), 400, "SerializationException"),
    Case("body_null", lambda w: api(w, "ListOrganizations", "null"), 400, "SerializationException"),
    Case("body_string", lambda w: api(w, "ListOrganizations", '"{}"'), 400, "SerializationException"),
    Case("body_truncated", lambda w: api(w, "CreateOrganization", '{"Alias": "ab'), 400, "SerializationException"),
    Case("body_trailing_garbage", lambda w: api(w, "ListOrganizations", "{} {}"), 400, "SerializationException"),
    Case("duplicate_member", lambda w: api(w, "ListOrganizations", '{"MaxResults": 1, "MaxResults": 2}'), 400, "SerializationException"),
    # ---- unknown members are ignored (Smithy: forward compatibility), the known ones still apply ----
    Case("unknown_member_ignored", lambda w: api(w, "DescribeOrganization", {"OrganizationId": FAKE_ORG, "Bogus": {"x": [1, 2]}}), 400, "OrganizationNotFoundException"),
    Case("unknown_member_case", lambda w: api(w, "DescribeOrganization", {"organizationId": o(w)}), 400, "InvalidParameterException"),
    Case("unknown_member_deep", lambda w: api(w, "ListOrganizations", '{"Bogus": ' + "[" * 100 + "]" * 100 + "}"), 200, None),
    # ---- deep nesting and huge values ----
    # Unknown members are skipped without recursion, so depth there is harmless; depth in a known member is a type error.
    Case("deep_nesting_unknown_member", lambda w: api(w, "ListOrganizations", '{"Bogus": ' + "[" * 20000 + "]" * 20000 + "}"), 200, None),
    Case("deep_nesting_objects", lambda w: api(w, "ListOrganizations", '{"a":' * 10000 + "1" + "}" * 10000), 200, None),
    Case("deep_nesting_known_member", lambda w: api(w, "DescribeOrganization", '{"OrganizationId": ' + "[" * 20000 + "]" * 20000 + "}"), 400, "SerializationException"),
    Case("deep_nesting_unbalanced", lambda w: api(w, "ListOrganizations", '{"Bogus": ' + "[" * 20000), 400, "SerializationException"),
    Case("huge_org_id", lambda w: api(w, "DescribeOrganization", {"OrganizationId": "m-" + "a" * 60000}), 400, "InvalidParameterException"),
    Case("huge_alias", lambda w: api(w, "CreateOrganization", {"Alias": "a" * 50000}), 400, "InvalidParameterException"),
    Case("huge_password", lambda w: api(w, "CreateUser", {"OrganizationId": o(w), "Name": "hp1", "DisplayName": "x", "Password": "Aa1!" * 15000}), 400, "InvalidParameterException"),
    Case("huge_next_token", lambda w: api(w, "ListOrganizations", {"NextToken": "A" * 60000}), 400, "InvalidParameterException", BAD_TOKEN),
    Case("body_over_limit", lambda w: api(w, "ListOrganizations", {"Bogus": "x" * (70 * 1024)}), 413, "RequestEntityTooLargeException"),
    Case("many_members", lambda w: api(w, "ListOrganizations", "{" + ",".join(f'"k{i}":{i}' for i in range(5000)) + "}"), 200, None),
    # ---- invalid UTF-8, control characters, non-ASCII ----
    Case("invalid_utf8_in_string", lambda w: api(w, "CreateOrganization", b'{"Alias": "ab\xff\xfecd"}'), 400, "SerializationException"),
    Case("invalid_utf8_body", lambda w: api(w, "ListOrganizations", b"\xff\xfe\x00{"), 400, "SerializationException"),
    Case("lone_surrogate_escape", lambda w: api(w, "CreateOrganization", '{"Alias": "ab\\ud800cd"}'), 400, "SerializationException"),
    Case("nul_in_alias", lambda w: api(w, "CreateOrganization", {"Alias": "ab\u0000cd"}), 400, "InvalidParameterException"),
    Case("non_ascii_alias", lambda w: api(w, "CreateOrganization", {"Alias": "ålias-ü"}), 400, "InvalidParameterException"),
    Case("non_ascii_org_id", lambda w: api(w, "DescribeOrganization", {"OrganizationId": "m-ａ" + "0" * 31}), 400, "InvalidParameterException"),
    Case("rtl_override_username", lambda w: api(w, "CreateUser", {"OrganizationId": o(w), "Name": "ad\u202emin", "DisplayName": "x", "Password": "Passw0rd!Aa"}), 400, "InvalidParameterException"),
    # ---- out-of-range values ----
    Case("max_results_zero", lambda w: api(w, "ListOrganizations", {"MaxResults": 0}), 400, "InvalidParameterException"),
    Case("max_results_negative", lambda w: api(w, "ListOrganizations", {"MaxResults": -5}), 400, "InvalidParameterException"),
    Case("max_results_101", lambda w: api(w, "ListOrganizations", {"MaxResults": 101}), 400, "InvalidParameterException"),
    Case("lifetime_negative", lambda w: api(w, "PutIdentityProviderConfiguration", {"OrganizationId": o(w), "AuthenticationMode": "IDENTITY_PROVIDER_AND_DIRECTORY", "IdentityCenterConfiguration": {"InstanceArn": "arn:aws:sso:::instance/ssoins-1111111111111111", "ApplicationArn": "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"}, "PersonalAccessTokenConfiguration": {"Status": "ACTIVE", "LifetimeInDays": -1}}), 400, "InvalidParameterException"),
    Case("enum_unknown_value", lambda w: api(w, "PutIdentityProviderConfiguration", {"OrganizationId": o(w), "AuthenticationMode": "EVERYONE", "IdentityCenterConfiguration": {"InstanceArn": "arn:aws:sso:::instance/ssoins-1111111111111111", "ApplicationArn": "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"}, "PersonalAccessTokenConfiguration": {"Status": "ACTIVE"}}), 400, "InvalidParameterException"),
    Case("pat_id_path_traversal", lambda w: api(w, "GetPersonalAccessTokenMetadata", {"OrganizationId": o(w), "PersonalAccessTokenId": "../../etc/passwd"}), 400, "InvalidParameterException"),
    Case("pat_id_sql", lambda w: api(w, "DeletePersonalAccessToken", {"OrganizationId": o(w), "PersonalAccessTokenId": "x' OR '1'='1"}), 400, "InvalidParameterException"),
    # ---- targets ----
    Case("target_unknown_op", lambda w: signed_request(w.url, target="WorkMailService.CreateGroup", body={}, account=w.acct), 400, "UnknownOperationException"),
    Case("target_wrong_case", lambda w: signed_request(w.url, target="WorkMailService.listOrganizations", body={}, account=w.acct), 400, "UnknownOperationException"),
    Case("target_other_service", lambda w: signed_request(w.url, target="DynamoDB_20120810.ListTables", body={}, account=w.acct), 400, "UnknownOperationException"),
    Case("target_huge", lambda w: signed_request(w.url, target="WorkMailService." + "A" * 8000, body={}, account=w.acct), 400, "UnknownOperationException"),
    Case("target_missing", lambda w: raw_request(w.url, "POST", "/", b"{}", {k: v for k, v in sign_headers(w.url, None, b"{}", access_key=w.acct).items()}), 400, "UnknownOperationException"),
    Case("target_two_conflicting", lambda w: raw_socket(w.url, signed_head(w, "ListOrganizations", b"{}", [(b"X-Amz-Target", b"WorkMailService.DeleteOrganization")]), b"{}"), 400, "UnknownOperationException"),
    Case("target_two_identical", lambda w: raw_socket(w.url, signed_head(w, "ListOrganizations", b"{}", [(b"X-Amz-Target", b"WorkMailService.ListOrganizations")]), b"{}"), 400, "UnknownOperationException"),
    Case("target_non_utf8", lambda w: raw_socket(w.url, signed_head(w, "ListOrganizations", b"{}", [(b"X-Amz-Target", b"WorkMailService.\xff\xfe")], drop=("x-amz-target",)), b"{}"), 400, "UnknownOperationException"),
    # ---- Authorization ----
    Case("auth_missing", lambda w: unsigned_request(w.url, "ListOrganizations", {}), 400, "MissingAuthenticationTokenException", "Request is missing Authentication Token"),
    Case("auth_blank", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": "   "}), 400, "MissingAuthenticationTokenException"),
    Case("auth_bearer", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": "Bearer wmpat_abc"}), 400, "IncompleteSignatureException"),
    Case("auth_basic", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": "Basic YWRtaW46YWRtaW4="}), 400, "IncompleteSignatureException"),
    Case("auth_garbage_params", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": "AWS4-HMAC-SHA256 Foo=bar, Baz"}), 400, "IncompleteSignatureException"),
    Case("auth_no_signature", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": f"AWS4-HMAC-SHA256 Credential={w.acct}/20250101/us-east-1/workmail/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target"}), 400, "IncompleteSignatureException"),
    Case("auth_short_signature", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": f"AWS4-HMAC-SHA256 Credential={w.acct}/20250101/us-east-1/workmail/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc"}), 400, "IncompleteSignatureException"),
    Case("auth_bad_terminator", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": f"AWS4-HMAC-SHA256 Credential={w.acct}/20250101/us-east-1/workmail/aws5_request, SignedHeaders=host, Signature={'a' * 64}"}), 400, "IncompleteSignatureException"),
    Case("auth_empty_region", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": f"AWS4-HMAC-SHA256 Credential={w.acct}/20250101//workmail/aws4_request, SignedHeaders=host, Signature={'a' * 64}"}), 400, "InvalidSignatureException"),
    Case("auth_huge", lambda w: unsigned_request(w.url, "ListOrganizations", {}, {"Authorization": "AWS4-HMAC-SHA256 Credential=" + "A" * 7000}), 400, "IncompleteSignatureException"),
    Case("auth_two_conflicting", lambda w: raw_socket(w.url, signed_head(w, "ListOrganizations", b"{}", [(b"Authorization", b"AWS4-HMAC-SHA256 Credential=999999999999/20250101/us-east-1/workmail/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + b"0" * 64)]), b"{}"), 400, "IncompleteSignatureException"),
    Case("auth_non_ascii", lambda w: raw_socket(w.url, signed_head(w, "ListOrganizations", b"{}", [(b"Authorization", b"AWS4-HMAC-SHA256 Credential=\xc3\xa9/20250101/us-east-1/workmail/aws4_request")], drop=("authorization",)), b"{}"), 400, "IncompleteSignatureException"),
    # ---- HTTP-level oddities ----
    Case("get_root", lambda w: raw_request(w.url, "GET", "/", None, {}), 303, None),
    Case("put_root", lambda w: raw_request(w.url, "PUT", "/", b"{}", {"Content-Type": JSON_CT}), 405, None),
    Case("unknown_path", lambda w: raw_request(w.url, "POST", "/v2/../admin", b"{}", {"Content-Type": JSON_CT}), 404, "NotFoundException"),
    Case("two_content_lengths", lambda w: raw_socket(w.url, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", b"{}"), 400, None),
    Case("chunked_and_length", lambda w: raw_socket(w.url, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", b"0\r\n\r\n"), 400, None),
    Case("control_byte_in_header", lambda w: raw_socket(w.url, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: Work\x01Mail\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), 400, None),
    # ---- NextTokens from elsewhere, replayed tokens ----
    Case("next_token_garbage", lambda w: api(w, "ListOrganizations", {"NextToken": "not-a-token"}), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_other_operation", lambda w: api(w, "ListUsers", {"OrganizationId": o(w), "NextToken": w.list_pats_token}), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_other_operation_2", lambda w: api(w, "ListOrganizations", {"NextToken": w.list_users_token}), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_other_account", lambda w: api(w, "ListOrganizations", {"NextToken": w.list_orgs_token}, account=w.other_acct), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_other_region", lambda w: api(w, "ListOrganizations", {"NextToken": w.list_orgs_token}, region="eu-west-1"), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_other_org", lambda w: signed_request(w.url, "ListUsers", {"OrganizationId": w.other_org.org_id, "NextToken": w.list_users_token}, account=w.other_acct), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_tampered", lambda w: api(w, "ListOrganizations", {"NextToken": w.list_orgs_token[:-3] + ("AAA" if not w.list_orgs_token.endswith("AAA") else "BBB")}), 400, "InvalidParameterException", BAD_TOKEN),
    Case("next_token_replayed", lambda w: (api(w, "ListOrganizations", {"NextToken": w.list_orgs_token, "MaxResults": 1}), api(w, "ListOrganizations", {"NextToken": w.list_orgs_token, "MaxResults": 1}))[1], 200, None),
    # ---- another account's / region's resources ----
    Case("other_account_org", lambda w: api(w, "DescribeOrganization", {"OrganizationId": w.other_org.org_id}), 400, "OrganizationNotFoundException"),
    Case("other_region_org", lambda w: api(w, "DescribeOrganization", {"OrganizationId": o(w)}, region="eu-west-1"), 400, "OrganizationNotFoundException"),
    Case("other_account_pat_metadata", lambda w: api(w, "GetPersonalAccessTokenMetadata", {"OrganizationId": w.other_org.org_id, "PersonalAccessTokenId": w.other_pat["PersonalAccessTokenId"]}), 400, "OrganizationNotFoundException"),
    # D6: deleting an unknown id is 200 (idempotent) -- and must not touch the other account's token of that id.
    Case("other_org_pat_via_own_org", lambda w: api(w, "DeletePersonalAccessToken", {"OrganizationId": o(w), "PersonalAccessTokenId": w.other_pat["PersonalAccessTokenId"]}), 200, None),
    Case("other_org_pat_survives", lambda w: w.other_org.users["alice"].verify(w.other_pat["Token"]), 200, None),
    Case("other_org_pat_metadata_via_own_org", lambda w: api(w, "GetPersonalAccessTokenMetadata", {"OrganizationId": o(w), "PersonalAccessTokenId": w.other_pat["PersonalAccessTokenId"]}), 400, "ResourceNotFoundException"),
    Case("other_account_delete_user", lambda w: api(w, "DeleteUser", {"OrganizationId": w.other_org.org_id, "UserId": w.other_org.users["alice"].user_id}), 400, "OrganizationNotFoundException"),
    Case("other_org_user_via_own_org", lambda w: api(w, "DescribeUser", {"OrganizationId": o(w), "UserId": w.other_org.users["alice"].user_id}), 400, "EntityNotFoundException"),
    # ---- web API without or with a forged session ----
    Case("web_create_no_session", lambda w: webapp(w.url, "POST", "/webapp/api/personal-access-tokens", {"Name": "x"}), 401, "UnauthorizedException"),
    Case("web_list_forged_session", lambda w: webapp(w.url, "GET", "/webapp/api/personal-access-tokens", bearer="A" * 43), 401, "UnauthorizedException"),
    Case("web_list_pat_as_session", lambda w: webapp(w.url, "GET", "/webapp/api/personal-access-tokens", bearer=w.alice_pat["Token"]), 401, "UnauthorizedException"),
    Case("web_delete_forged_session", lambda w: webapp(w.url, "DELETE", f"/webapp/api/personal-access-tokens/{w.alice_pat['PersonalAccessTokenId']}", bearer="forged"), 401, "UnauthorizedException"),
    Case("web_bearer_non_ascii", lambda w: raw_socket(w.url, b"GET /webapp/api/personal-access-tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"), 401, "UnauthorizedException"),
    Case("web_two_bearers", lambda w: raw_socket(w.url, b"GET /webapp/api/personal-access-tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + w.org.users["alice"].session.encode() + b"\r\nAuthorization: Bearer " + w.org.users["bob"].session.encode() + b"\r\nConnection: close\r\n\r\n"), 401, "UnauthorizedException"),
    Case("web_delete_other_users_token", lambda w: w.org.users["alice"].delete_pat(w.bob_pat["PersonalAccessTokenId"]), 404, "ResourceNotFoundException"),
    Case("web_delete_other_accounts_token", lambda w: w.org.users["alice"].delete_pat(w.other_pat["PersonalAccessTokenId"]), 404, "ResourceNotFoundException"),
    Case("web_delete_traversal_id", lambda w: webapp(w.url, "DELETE", "/webapp/api/personal-access-tokens/..%2F..%2Fsessions", bearer=w.org.users["alice"].session), 404, "ResourceNotFoundException"),
    Case("web_create_name_wrong_type", lambda w: webapp(w.url, "POST", "/webapp/api/personal-access-tokens", {"Name": ["x"]}, bearer=w.org.users["alice"].session), 400, "InvalidParameterException"),
    Case("web_create_body_not_json", lambda w: webapp(w.url, "POST", "/webapp/api/personal-access-tokens", b"Name=x", bearer=w.org.users["alice"].session), 400, "InvalidParameterException"),
    Case("sign_in_wrong_password", lambda w: webapp(w.url, "POST", "/webapp/api/sessions", {"OrganizationId": o(w), "Username": "alice", "Password": "wrong-Passw0rd"}), 401, None, body=SESSION_401),
    Case("sign_in_unknown_user", lambda w: webapp(w.url, "POST", "/webapp/api/sessions", {"OrganizationId": o(w), "Username": "mallory", "Password": "wrong-Passw0rd"}), 401, None, body=SESSION_401),
    Case("sign_in_other_accounts_org", lambda w: webapp(w.url, "POST", "/webapp/api/sessions", {"OrganizationId": w.other_org.org_id, "Username": "bob", "Password": "Passw0rd!Aa"}), 401, None, body=SESSION_401),
    Case("sign_in_password_wrong_type", lambda w: webapp(w.url, "POST", "/webapp/api/sessions", {"OrganizationId": o(w), "Username": "alice", "Password": 12345}), 401, None, body=SESSION_401),
    Case("sign_in_invalid_utf8", lambda w: webapp(w.url, "POST", "/webapp/api/sessions", b'{"OrganizationId":"x","Username":"\xff","Password":"y"}'), 401, None, body=SESSION_401),
    # ---- verification endpoint ----
    Case("verify_garbage_token", lambda w: w.org.users["alice"].verify("wmpat_garbage"), 401, None, body=VERIFY_401),
    Case("verify_deleted_token_replayed", lambda w: w.org.users["alice"].verify(w.deleted_pat["Token"]), 401, None, body=VERIFY_401),
    Case("verify_other_users_token", lambda w: w.org.users["bob"].verify(w.alice_pat["Token"]), 401, None, body=VERIFY_401),
    Case("verify_other_orgs_token", lambda w: w.org.users["alice"].verify(w.other_pat["Token"]), 401, None, body=VERIFY_401),
    Case("verify_non_ascii_username", lambda w: w.org.users["alice"].verify(w.alice_pat["Token"], username="alicé"), 401, None, body=VERIFY_401),
    Case("verify_token_wrong_type", lambda w: webapp(w.url, "POST", "/auth/v1/verify", {"OrganizationId": o(w), "Username": "alice", "Token": 1}), 401, None, body=VERIFY_401),
    Case("verify_body_array", lambda w: webapp(w.url, "POST", "/auth/v1/verify", b"[]"), 401, None, body=VERIFY_401),
    Case("verify_huge_token", lambda w: w.org.users["alice"].verify("wmpat_" + "A" * 60000), 401, None, body=VERIFY_401),
]


def test_catalogue_is_large_and_distinct():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 60, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(world, case: Case):
    r = case.send(world)
    assert r.status == case.status, r
    if case.type is not None:
        assert r.error_type == case.type, r
        assert r.header("x-amzn-requestid"), r
    if case.message is not None:
        assert err_message(r) == case.message, r
    if case.body is not None:
        assert r.json() == case.body, r
    if r.status >= 400 and r.body:
        # No error echoes a secret it was sent.
        text = r.body.decode("utf-8", "replace")
        assert world.alice_pat["Token"] not in text and "Passw0rd" not in text, r


def test_server_healthy_after_catalogue(world):
    for case in CASES:  # run the whole catalogue once more back to back, then ask for health
        case.send(world)
    r = raw_request(world.url, "GET", "/_workmail-pat/health")
    assert r.status == 200, r
    # And it still serves real work: the good token verifies, the list pages.
    assert world.org.users["alice"].verify(world.alice_pat["Token"]).status == 200
    out = make_client(world.url, account=world.acct).list_organizations(MaxResults=1)
    assert out["OrganizationSummaries"]
