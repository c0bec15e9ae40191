"""Health, metrics, the test-support API (reset, clock, seeded ids), seed files, `seed --generate` and `dump`."""

import json
import re
import urllib.error
import urllib.request

import pytest

from conftest import (
    ServerProcess,
    make_client,
    make_pat_org,
    new_account,
    run_bin,
    signed_request,
    verify,
)

FIXED_SECRET = "wmpat_ExampleFixtureSecret0NotForProduction0004OqZiI"


def http(url, method="GET", body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def test_api_server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("testapi"), name="testapi", extra_args=["--enable-test-api"]).start()
    yield srv
    assert srv.stop() == 0


def test_health_and_localstack_health(url):
    status, headers, body = http(url + "/_workmail-pat/health")
    assert status == 200
    doc = json.loads(body)
    assert doc["Status"] == "ok" and doc["Database"] == "ok"
    assert "x-amzn-RequestId" in headers or "x-amzn-requestid" in {k.lower() for k in headers}
    status, _, body = http(url + "/_localstack/health")
    assert status == 200
    assert json.loads(body)["services"]["workmail"] == "running"


def test_metrics_count_operations_and_errors(url):
    account = new_account()
    wm = make_client(url, account=account)
    wm.list_organizations()
    with pytest.raises(wm.exceptions.OrganizationNotFoundException):
        wm.describe_organization(OrganizationId="m-" + "0" * 32)
    org = make_pat_org(url)
    token = org.users["alice"].create_pat("metrics")["Token"]
    assert org.users["alice"].verify(token).status == 200
    assert org.users["alice"].verify(token[:-1] + "x").status == 401
    status, headers, body = http(url + "/metrics")
    assert status == 200
    text = body.decode()
    ok = re.search(r'workmail_pat_requests_total\{operation="ListOrganizations",outcome="ok"\} (\d+)', text)
    assert ok and int(ok.group(1)) >= 1
    assert re.search(
        r'workmail_pat_requests_total\{operation="DescribeOrganization",outcome="OrganizationNotFoundException"\} \d+',
        text,
    )
    assert 'workmail_pat_request_duration_seconds_bucket{operation="ListOrganizations"' in text
    assert re.search(r'workmail_pat_token_verifications_total\{result="success"\} \d+', text)
    assert re.search(r'workmail_pat_token_verifications_total\{result="failure"\} \d+', text)
    assert "workmail_pat_database_connections" in text


def test_test_api_is_off_by_default(url):
    for path in ["/_workmail-pat/reset", "/moto-api/reset", "/_localstack/state/reset", "/_workmail-pat/clock"]:
        status, _, _ = http(url + path, "POST", {})
        assert status == 404, path


def test_test_api_refused_on_non_loopback(tmp_path):
    r = run_bin(["serve", "--listen", "0.0.0.0:0", "--database", "sqlite::memory:", "--enable-test-api",
                 "--allow-insecure-any-credentials"], timeout=30)
    assert r.returncode != 0
    assert "test-support API" in r.stderr


@pytest.mark.parametrize("path", ["/_workmail-pat/reset", "/moto-api/reset", "/_localstack/state/reset"])
def test_reset_everything(test_api_server, path):
    url = test_api_server.url
    a, b = new_account(), new_account()
    make_client(url, account=a).create_organization(Alias="reset-a")
    make_client(url, account=b, region="eu-west-1").create_organization(Alias="reset-b")
    status, _, _ = http(url + path, "POST")
    assert status == 200
    assert make_client(url, account=a).list_organizations()["OrganizationSummaries"] == []
    assert make_client(url, account=b, region="eu-west-1").list_organizations()["OrganizationSummaries"] == []


def test_reset_one_partition_keeps_the_others(test_api_server):
    url = test_api_server.url
    a, b = new_account(), new_account()
    org_a = make_pat_org(url, account=a)
    token = org_a.users["alice"].create_pat("kept")["Token"]
    make_client(url, account=b).create_organization(Alias="gone")
    status, _, _ = http(url + "/_workmail-pat/reset", "POST", {"Account": b, "Region": "us-east-1"})
    assert status == 200
    assert make_client(url, account=b).list_organizations()["OrganizationSummaries"] == []
    assert len(make_client(url, account=a).list_organizations()["OrganizationSummaries"]) == 1
    assert verify(url, org_a.org_id, "alice", token).status == 200
    # A half-given partition is refused and resets nothing.
    status, _, body = http(url + "/_workmail-pat/reset", "POST", {"Account": a})
    assert status == 400 and json.loads(body)["__type"] == "InvalidParameterException"
    assert len(make_client(url, account=a).list_organizations()["OrganizationSummaries"]) == 1


def test_clock_moves_expiry_next_tokens_and_last_used(test_api_server):
    url = test_api_server.url
    org = make_pat_org(url, lifetime=2)
    alice = org.users["alice"]
    pats = [alice.create_pat(f"t{i}") for i in range(3)]
    page = org.client.list_personal_access_tokens(OrganizationId=org.org_id, MaxResults=1)
    next_token = page["NextToken"]

    status, _, body = http(url + "/_workmail-pat/clock")
    before = json.loads(body)["Now"]
    status, _, body = http(url + "/_workmail-pat/clock", "POST", {"AdvanceSeconds": 3600})
    assert status == 200
    assert json.loads(body)["Now"] >= before + 3600
    # DateLastUsed follows server time.
    assert alice.verify(pats[0]["Token"]).status == 200
    meta = org.client.get_personal_access_token_metadata(
        OrganizationId=org.org_id, PersonalAccessTokenId=pats[0]["PersonalAccessTokenId"]
    )
    assert meta["DateLastUsed"].timestamp() >= before + 3600 - 1

    # Past the 2-day lifetime the tokens stop verifying but stay listed; the NextToken (24 h) has expired.
    http(url + "/_workmail-pat/clock", "POST", {"AdvanceSeconds": 3 * 86400})
    assert alice.verify(pats[1]["Token"]).status == 401
    listed = org.client.list_personal_access_tokens(OrganizationId=org.org_id)["PersonalAccessTokenSummaries"]
    assert len(listed) == 3
    r = signed_request(url, "ListPersonalAccessTokens", {"OrganizationId": org.org_id, "NextToken": next_token},
                       account=org.account)
    assert r.status == 400 and r.error_type == "InvalidParameterException"

    # Setting an absolute time works too, and bad bodies are refused.
    status, _, body = http(url + "/_workmail-pat/clock", "POST", {"Now": before})
    assert status == 200 and abs(json.loads(body)["Now"] - before) < 5
    for bad in [{}, {"AdvanceSeconds": 1, "Now": 1}, {"AdvanceSeconds": "x"}, {"Now": -5}, {"AdvanceSeconds": 1e300}]:
        status, _, _ = http(url + "/_workmail-pat/clock", "POST", bad)
        assert status == 400, bad
    assert alice.verify(pats[1]["Token"]).status == 200


def test_seeded_ids_repeat(test_api_server):
    url = test_api_server.url
    ids = []
    account = new_account()
    for _ in range(2):
        # The documented use: reset, seed, then replay the same calls.
        assert http(url + "/_workmail-pat/reset", "POST")[0] == 200
        assert http(url + "/_workmail-pat/seed", "POST", {"Seed": 1234})[0] == 200
        wm = make_client(url, account=account)
        org = wm.create_organization(Alias="seeded")["OrganizationId"]
        user = wm.create_user(OrganizationId=org, Name="u1", DisplayName="U")["UserId"]
        ids.append((org, user))
    assert ids[0] == ids[1]
    assert http(url + "/moto-api/seed?a=99", "POST")[0] == 200
    assert http(url + "/_workmail-pat/seed", "POST", {"Seed": -1})[0] == 400


SEED_YAML = f"""
organizations:
  - alias: seeded-acme
    account: "{{account}}"
    pat_configuration: {{{{status: ACTIVE, lifetime_in_days: 30}}}}
    users:
      - name: alice
        password: "Correct-Horse-7"
        email: alice@seeded-acme.awsapps.com
        tokens:
          - {{{{name: laptop, scopes: [IMAP]}}}}
          - {{{{name: phone, secret: "{FIXED_SECRET}"}}}}
      - name: bob
        password: "Another-Pass-9"
"""


def test_serve_with_seed_file_is_idempotent_across_restarts(tmp_path):
    account = new_account()
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED_YAML.format(account=account))
    srv = ServerProcess(tmp_path / "srv", extra_args=["--seed", str(seed)]).start()
    try:
        wm = make_client(srv.url, account=account)
        orgs = wm.list_organizations()["OrganizationSummaries"]
        assert [o["Alias"] for o in orgs] == ["seeded-acme"]
        org_id = orgs[0]["OrganizationId"]
        assert verify(srv.url, org_id, "alice", FIXED_SECRET, scope="IMAP").status == 200
        users = {u["Name"]: u for u in wm.list_users(OrganizationId=org_id)["Users"]}
        assert users["alice"]["State"] == "ENABLED" and users["bob"]["State"] == "DISABLED"
        tokens = wm.list_personal_access_tokens(OrganizationId=org_id)["PersonalAccessTokenSummaries"]
        assert sorted(t["Name"] for t in tokens) == ["laptop", "phone"]
    finally:
        assert srv.stop() == 0
    srv.start()
    try:
        wm = make_client(srv.url, account=account)
        assert len(wm.list_organizations()["OrganizationSummaries"]) == 1
        org_id = wm.list_organizations()["OrganizationSummaries"][0]["OrganizationId"]
        assert len(wm.list_personal_access_tokens(OrganizationId=org_id)["PersonalAccessTokenSummaries"]) == 2
    finally:
        assert srv.stop() == 0


def test_seed_command_prints_generated_secrets_once_and_dump_hides_secrets(tmp_path):
    account = new_account()
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED_YAML.format(account=account))
    db = f"sqlite:{tmp_path / 'wm.db'}"
    r = run_bin(["seed", "--database", db, str(seed)])
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    alice = report["Organizations"][0]["Users"][0]
    generated = [t for t in alice["Tokens"] if "Token" in t]
    assert [t["Name"] for t in generated] == ["laptop"]
    secret = generated[0]["Token"]
    assert re.fullmatch(r"wmpat_[A-Za-z0-9]{46}", secret)

    r2 = run_bin(["seed", "--database", db, str(seed)])
    assert r2.returncode == 0 and "Token\"" not in r2.stdout.replace("Tokens\"", "")

    dump = run_bin(["dump", "--database", db])
    assert dump.returncode == 0, dump.stderr
    doc = json.loads(dump.stdout)
    org = doc["Organizations"][0]
    assert org["Alias"] == "seeded-acme" and len(org["PersonalAccessTokens"]) == 2
    assert org["IdentityProviderConfiguration"]["PersonalAccessTokenStatus"] == "ACTIVE"
    for forbidden in [secret, FIXED_SECRET, "argon2", "Correct-Horse-7"]:
        assert forbidden not in dump.stdout

    # The generated secret verifies on a server started on the same file.
    srv = ServerProcess(tmp_path / "srv", db_path=tmp_path / "wm.db").start()
    try:
        assert verify(srv.url, org["OrganizationId"], "alice", secret, scope="IMAP").status == 200
    finally:
        assert srv.stop() == 0


def test_bad_seed_files_are_refused_clearly(tmp_path):
    db = f"sqlite:{tmp_path / 'wm.db'}"
    cases = {
        "typo.yaml": "organizations: [{alias: a, users: [{name: x, pasword: y}]}]",
        "badalias.yaml": "organizations: [{alias: 'not an alias'}]",
        "badsecret.yaml": "organizations: [{alias: ok1, pat_configuration: {status: ACTIVE}, users: [{name: u, "
        "tokens: [{name: t, secret: wmpat_nope}]}]}]",
        "weak.yaml": "organizations: [{alias: ok2, users: [{name: u, password: weak}]}]",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        r = run_bin(["seed", "--database", db, str(path)])
        assert r.returncode != 0, name
        assert "error" in r.stderr.lower(), name
        assert "panicked" not in r.stderr, name


def test_generate_builds_a_store_that_serves_and_verifies(tmp_path):
    db = f"sqlite:{tmp_path / 'gen.db'}"
    secrets_file = tmp_path / "secrets.csv"
    r = run_bin(["seed", "--database", db, "--generate", "2000", "--account", "123456789012",
                 "--secrets-out", str(secrets_file), "--secrets-sample", "20", "--quiet"], timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["Tokens"] == 2000 and summary["Organizations"] == 10 and summary["Users"] == 200
    lines = secrets_file.read_text().splitlines()
    assert len(lines) == 20
    assert (secrets_file.stat().st_mode & 0o077) == 0
    srv = ServerProcess(tmp_path / "srv", db_path=tmp_path / "gen.db").start()
    try:
        wm = make_client(srv.url, account="123456789012")
        orgs = wm.list_organizations()["OrganizationSummaries"]
        assert len(orgs) == 10
        total = 0
        for o in orgs:
            for page in wm.get_paginator("list_personal_access_tokens").paginate(OrganizationId=o["OrganizationId"]):
                total += len(page["PersonalAccessTokenSummaries"])
        assert total == 2000
        for line in lines[:5]:
            org_id, user, secret = line.split(",")
            assert verify(srv.url, org_id, user, secret).status == 200
    finally:
        assert srv.stop() == 0


def test_reseeding_without_reset_never_fails(test_api_server):
    """Seeded ids repeat; when the repeated id already exists the server draws another instead of failing."""
    url = test_api_server.url
    account = new_account()
    wm = make_client(url, account=account)
    created = []
    for i in range(2):
        assert http(url + "/_workmail-pat/seed", "POST", {"Seed": 777})[0] == 200
        org = wm.create_organization(Alias=f"reseed-{i}")["OrganizationId"]
        user = wm.create_user(OrganizationId=org, Name="u1", DisplayName="U")["UserId"]
        created.append((org, user))
    assert created[0][0] != created[1][0] and created[0][1] != created[1][1]
    orgs = {o["OrganizationId"] for o in wm.list_organizations()["OrganizationSummaries"]}
    assert {created[0][0], created[1][0]} <= orgs
