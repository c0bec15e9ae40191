"""Audit log and log secrecy (issue 5): a server at RUST_LOG=trace with --log-format json, driven through everything
that handles a secret. No PAT secret, password, session token, NextToken (sealed or plaintext id), NextToken key,
pepper or SigV4 secret key may appear anywhere in stderr; the audit events appear as one JSON object per line."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest

from conftest import (
    IDC_APPLICATION_ARN,
    IDC_INSTANCE_ARN,
    ServerProcess,
    make_client,
    signed_request,
    sign_in,
    verify,
    webapp,
)

ACCOUNT = "210987654321"
ACCESS_KEY = "AKIAAUDITLOGTEST0001"
SECRET_KEY = "audit/SecretKey+" + uuid.uuid4().hex  # unique, so a hit can only come from a leak
PASSWORD = "Sekrit-" + uuid.uuid4().hex[:12] + "!A1"
NEW_PASSWORD = "Rotated-" + uuid.uuid4().hex[:12] + "!B2"
WRONG_PASSWORD = "Wrong-" + uuid.uuid4().hex[:12] + "!C3"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("audit")
    old = os.environ.get("RUST_LOG")
    os.environ["RUST_LOG"] = "trace"
    try:
        srv = ServerProcess(
            work,
            extra_args=["--log-format", "json", "--auth", "sigv4", "--access-key", f"{ACCESS_KEY}:{SECRET_KEY}:{ACCOUNT}"],
            name="audit",
        ).start()
    finally:
        if old is None:
            del os.environ["RUST_LOG"]
        else:
            os.environ["RUST_LOG"] = old
    secrets: dict[str, str] = {"sigv4 secret key": SECRET_KEY, "password": PASSWORD, "new password": NEW_PASSWORD,
                               "wrong password": WRONG_PASSWORD}
    url = srv.url
    wm = make_client(url, access_key=ACCESS_KEY, secret=SECRET_KEY)
    alias = f"audit{uuid.uuid4().hex[:10]}"
    org = wm.create_organization(Alias=alias)["OrganizationId"]
    wm.put_identity_provider_configuration(
        OrganizationId=org,
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration={"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": IDC_APPLICATION_ARN},
        PersonalAccessTokenConfiguration={"Status": "ACTIVE", "LifetimeInDays": 30},
    )
    uids = []
    for name in ("alice", "bob", "carol"):
        uid = wm.create_user(OrganizationId=org, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
        wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"{name}@{alias}.awsapps.com")
        uids.append(uid)
    wm.reset_password(OrganizationId=org, UserId=uids[2], Password=NEW_PASSWORD)
    # Sign-in: success and failure.
    r = sign_in(url, org, "alice", PASSWORD)
    assert r.status == 200, r
    session = r.json()["SessionToken"]
    secrets["session token"] = session
    assert sign_in(url, org, "alice", WRONG_PASSWORD).status == 401
    assert sign_in(url, org, "nobody", WRONG_PASSWORD).status == 401
    # Tokens: create, use, fail, delete.
    pats = []
    for i in range(3):
        r = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": f"t{i}"}, bearer=session)
        assert r.status == 201, r
        pats.append(r.json())
        secrets[f"PAT secret {i}"] = r.json()["Token"]
    assert verify(url, org, "alice", pats[0]["Token"]).status == 200
    assert verify(url, org, "bob", pats[0]["Token"]).status == 401
    forged = pats[1]["Token"][:-1] + ("A" if pats[1]["Token"][-1] != "A" else "B")
    secrets["forged PAT"] = forged
    assert verify(url, org, "alice", forged).status == 401
    assert webapp(url, "DELETE", f"/webapp/api/personal-access-tokens/{pats[2]['PersonalAccessTokenId']}",
                  bearer=session).status == 204
    assert verify(url, org, "alice", pats[2]["Token"]).status == 401
    # NextTokens of every paginated operation (and a tampered one).
    tokens = [
        wm.list_users(OrganizationId=org, MaxResults=1)["NextToken"],
        wm.list_personal_access_tokens(OrganizationId=org, MaxResults=1)["NextToken"],
    ]
    wm.create_organization(Alias=f"audit{uuid.uuid4().hex[:10]}")
    tokens.append(wm.list_organizations(MaxResults=1)["NextToken"])
    for i, t in enumerate(tokens):
        secrets[f"NextToken {i}"] = t
    wm.list_users(OrganizationId=org, MaxResults=1, NextToken=tokens[0])  # a token opened (its plaintext handled)
    bad = signed_request(url, "ListUsers", {"OrganizationId": org, "NextToken": tokens[1]}, access_key=ACCESS_KEY,
                         secret=SECRET_KEY)
    assert bad.status == 400, bad
    # SigV4: a wrong signature and an unknown key.
    assert signed_request(url, "ListOrganizations", {}, access_key=ACCESS_KEY, secret="wrong" + SECRET_KEY).status == 400
    assert signed_request(url, "ListOrganizations", {}, access_key="AKIAUNKNOWNKEY000000", secret=SECRET_KEY).status == 400
    rc = srv.stop()
    assert rc == 0, srv.stderr_tail()
    db = srv.db_path
    for suffix in (".token-key", ".pepper"):
        key_hex = open(f"{db}{suffix}").read().strip()
        secrets[f"key file {suffix}"] = key_hex
        raw = bytes.fromhex(key_hex)
        secrets[f"key file {suffix} (base64)"] = base64.b64encode(raw).decode().rstrip("=")
        secrets[f"key file {suffix} (base64url)"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    log = srv.stderr_path.read_text("utf-8", "replace")
    return {"log": log, "secrets": secrets, "org": org, "uids": uids, "pats": pats}


def events(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)  # every line is one JSON object
        assert isinstance(doc, dict), line
        out.append(doc)
    return out


def fields(e: dict) -> dict:
    f = dict(e.get("fields", {}))
    for span in e.get("spans", []) + ([e["span"]] if "span" in e else []):
        f.update({k: v for k, v in span.items() if k != "name"})
    return f


def test_every_line_is_json(run):
    # RUST_LOG=trace enables every level the code has (the access log at DEBUG included), so the secrecy test below
    # runs on everything any level prints.
    evs = events(run["log"])
    assert len(evs) >= 15, evs
    assert all(e.get("level") and e.get("timestamp") for e in evs)


def test_no_secret_reaches_the_log(run):
    log = run["log"]
    leaks = [name for name, value in run["secrets"].items() if value and value in log]
    assert leaks == [], f"secrets in the log: {leaks}"
    # Not even a long prefix of a PAT secret or the session token.
    for name, value in run["secrets"].items():
        if name.startswith("PAT secret") or name == "session token":
            assert value[:20] not in log, name


def by_event(run, name: str) -> list[dict]:
    return [fields(e) for e in events(run["log"]) if fields(e).get("event") == name]


def test_token_created_and_deleted_events(run):
    created = by_event(run, "token_created")
    ids = {p["PersonalAccessTokenId"] for p in run["pats"]}
    assert {e.get("token_id") for e in created} >= ids, created
    for e in created:
        assert e.get("organization_id") == run["org"] and e.get("user_id") == run["uids"][0], e
        assert e.get("request_id"), e
    deleted = by_event(run, "token_deleted")
    assert [e.get("token_id") for e in deleted] == [run["pats"][2]["PersonalAccessTokenId"]], deleted


def test_token_used_and_verification_failed_events(run):
    used = by_event(run, "token_used")
    assert any(e.get("token_id") == run["pats"][0]["PersonalAccessTokenId"] for e in used), used
    failed = by_event(run, "token_verification_failed")
    assert len(failed) >= 3, failed  # wrong user, forged, deleted
    for e in failed:
        assert e.get("organization_id") == run["org"], e
        assert e.get("request_id"), e


def test_sign_in_events_with_outcome(run):
    ev = by_event(run, "sign_in")
    outcomes = sorted(e.get("outcome") for e in ev)
    assert outcomes.count("success") == 1 and outcomes.count("failure") == 2, ev
    ok = next(e for e in ev if e["outcome"] == "success")
    assert ok.get("user_id") == run["uids"][0] and ok.get("request_id"), ok


def test_signature_failure_events(run):
    ev = by_event(run, "signature_failure")
    keys = sorted(e.get("access_key_id") for e in ev)
    assert keys == ["AKIAAUDITLOGTEST0001", "AKIAUNKNOWNKEY000000"], ev
    for e in ev:
        assert e.get("reason"), e


def test_access_log_records_every_request_and_nothing_secret(run):
    """At trace the access log (DEBUG) has one record per request; its fields are the documented ones only (no
    headers, bodies or query strings, which carry passwords, tokens, signatures and NextTokens)."""
    recs = [e for e in events(run["log"]) if e.get("target") == "workmail_pat::access"]
    # 3 users x 2 calls, org, IdP config, reset, 3 sign-ins, 3 creates, 4 verifications, delete, 5 lists, 3 sigv4...
    assert len(recs) >= 25, len(recs)
    allowed = {"message", "request_id", "client_ip", "method", "path", "operation", "status", "error_type",
               "duration_ms", "bytes_in", "bytes_out"}
    for e in recs:
        assert set(e["fields"]) <= allowed, e
        assert "?" not in e["fields"]["path"], e
    ops = {e["fields"].get("operation") for e in recs}
    assert {"CreateOrganization", "ListUsers", "ListPersonalAccessTokens"} <= ops, ops
    # The tampered NextToken and the bad signatures are logged by their error type only.
    types = {e["fields"].get("error_type") for e in recs}
    assert {"InvalidParameterException", "UnauthorizedException"} <= types, types
    assert any(t and "Signature" in t or t == "UnrecognizedClientException" for t in types), types
