"""Issue 12 ("Trust"), HTTP side: the test API and the accept-any AWS API against cross-site requests and DNS
rebinding (defect 6), the `__Host-` session cookie (defect 7), who may read `/metrics`, and the warning for secrets
on the command line.

Every test drives the real binary over a loopback socket. A DNS-rebound page is imitated by what gives it away on
the wire: its `Host` header names the attacker's domain while the connection goes to 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest

from conftest import (
    JSON_CT,
    ServerProcess,
    make_client,
    make_pat_org,
    new_account,
    raw_request,
    sign_headers,
    signed_request,
    webapp,
)

EVIL = "evil.example"


def host_of(url: str) -> str:
    return url.split("://", 1)[1]


def call_test_api(url: str, method: str, path: str, body=b"", headers=None):
    return raw_request(url, method, path, body, headers or {})


def aws_list_orgs(url: str, account: str, host: str | None = None):
    """An accept-any ListOrganizations with the Host header replaced after signing (accept-any checks no
    signature, so only the Host check can refuse it)."""

    def with_host(h, body):
        if host is not None:
            h = {k: v for k, v in h.items() if k.lower() != "host"}
            h["Host"] = host
        return h, body

    return signed_request(url, "ListOrganizations", {}, account=account, mutate=with_host)


def org_aliases(url: str, account: str) -> list[str]:
    r = aws_list_orgs(url, account)
    assert r.status == 200, r
    return [o["Alias"] for o in r.json().get("OrganizationSummaries", [])]


def assert_refused(r, aws: bool = False):
    assert r.status == 403, r
    doc = r.json()
    assert doc.get("__type") == "AccessDeniedException", r
    if aws:
        # An AWS-shaped error: X-Amzn-ErrorType and a request id, like every other error of the API.
        assert r.header("x-amzn-errortype") == "AccessDeniedException", r
        assert r.header("x-amzn-requestid"), r
        assert r.header("content-type") == JSON_CT, r


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A test-API server on a loopback listener, also reachable as `workmail` (`--allowed-host`)."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("guarded"),
        name="guarded",
        extra_args=["--enable-test-api", "--allowed-host", "workmail"],
    ).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def plain_test_api(tmp_path_factory):
    """A test-API server with no --allowed-host (so it also starts on today's binary)."""
    srv = ServerProcess(tmp_path_factory.mktemp("plain"), name="plain", extra_args=["--enable-test-api"]).start()
    yield srv
    assert srv.stop() == 0


def partition_reset_body(account: str) -> bytes:
    return json.dumps({"Account": account, "Region": "us-east-1"}).encode()


# ------------------------------------------------------------------------------------------------------ defect 6
def test_defect_06_cross_site_reset_is_refused_and_state_survives(plain_test_api):
    url = plain_test_api.url
    acct = new_account()
    make_client(url, account=acct).create_organization(Alias="survivor")
    # What a page on any origin can send without a CORS preflight: text/plain, form encodings, or no body at all.
    for headers in [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {},
    ]:
        for path in ["/_workmail-pat/reset", "/moto-api/reset", "/_localstack/state/reset"]:
            r = call_test_api(url, "POST", path, partition_reset_body(acct) if headers else b"", headers)
            assert_refused(r)
            assert org_aliases(url, acct) == ["survivor"], f"{path} {headers} wiped state"
    # The clock and the id seed are refused the same way.
    before = json.loads(call_test_api(url, "GET", "/_workmail-pat/clock").body)["Now"]
    r = call_test_api(url, "POST", "/_workmail-pat/clock", b'{"AdvanceSeconds": 86400}', {"Content-Type": "text/plain"})
    assert_refused(r)
    after = json.loads(call_test_api(url, "GET", "/_workmail-pat/clock").body)["Now"]
    assert after - before < 3600, "the clock moved"
    assert_refused(call_test_api(url, "POST", "/_workmail-pat/seed", b'{"Seed": 1}', {"Content-Type": "text/plain"}))
    assert_refused(call_test_api(url, "POST", "/moto-api/seed?a=1", b"", {}))
    # The documented way still works: JSON, with or without a charset.
    r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct),
                      {"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r
    assert org_aliases(url, acct) == []
    assert call_test_api(url, "POST", "/moto-api/seed?a=7", b"", {"Content-Type": "application/json"}).status == 200


def test_defect_06_foreign_origin_is_refused(plain_test_api):
    url = plain_test_api.url
    acct = new_account()
    make_client(url, account=acct).create_organization(Alias="kept")
    json_ct = {"Content-Type": "application/json"}
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1", f"http://{host_of(url)}.evil.example"]:
        r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct), {**json_ct, "Origin": origin})
        assert_refused(r)
        assert org_aliases(url, acct) == ["kept"], origin
        assert_refused(call_test_api(url, "GET", "/_workmail-pat/clock", b"", {"Origin": origin}))
    r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct),
                      {**json_ct, "Sec-Fetch-Site": "cross-site"})
    assert_refused(r)
    assert org_aliases(url, acct) == ["kept"]
    # The server's own origin (a page it served, e.g. a test harness) is fine.
    r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct),
                      {**json_ct, "Origin": f"http://{host_of(url)}", "Sec-Fetch-Site": "same-origin"})
    assert r.status == 200, r
    assert org_aliases(url, acct) == []


def test_defect_06_only_loopback_host_names_reach_the_test_api(plain_test_api):
    url = plain_test_api.url
    port = plain_test_api.port
    acct = new_account()
    make_client(url, account=acct).create_organization(Alias="rebound")
    json_ct = {"Content-Type": "application/json"}
    for host in [f"{EVIL}:{port}", EVIL, f"localhost.{EVIL}:{port}", f"127.0.0.1.{EVIL}", "workmail"]:
        r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct), {**json_ct, "Host": host})
        assert_refused(r)
        assert org_aliases(url, acct) == ["rebound"], host
        # Same-origin to the rebound page, so Origin would not help: only Host tells.
        r = call_test_api(url, "POST", "/_workmail-pat/clock", b'{"AdvanceSeconds": 86400}',
                          {**json_ct, "Host": host, "Origin": f"http://{host}"})
        assert_refused(r)
        assert_refused(call_test_api(url, "GET", "/_workmail-pat/clock", b"", {"Host": host}))
    # Loopback names, with any port, are served: the AWS API, the clock, a JSON POST.
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", "127.1.2.3", f"[::1]:{port}"]:
        r = aws_list_orgs(url, acct, host=host)
        assert r.status == 200, (host, r)
        r = call_test_api(url, "GET", "/_workmail-pat/clock", b"", {"Host": host})
        assert r.status == 200, (host, r)
        r = call_test_api(url, "POST", "/_workmail-pat/seed", b'{"Seed": 5}',
                          {"Host": host, "Content-Type": "application/json"})
        assert r.status == 200, (host, r)
    # Origin matching its own Host, under a loopback name.
    r = call_test_api(url, "POST", "/_workmail-pat/clock", b'{"AdvanceSeconds": 0}',
                      {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}",
                       "Content-Type": "application/json"})
    assert r.status == 200, r


def test_defect_06_rebound_host_is_refused_on_the_accept_any_aws_api(server, plain_test_api):
    for srv in [server, plain_test_api]:
        acct = new_account()
        make_client(srv.url, account=acct).create_organization(Alias="aws-rebound")
        for host in [f"{EVIL}:{srv.port}", EVIL]:
            assert_refused(aws_list_orgs(srv.url, acct, host=host), aws=True)
            r = signed_request(srv.url, "CreateOrganization", {"Alias": "planted"}, account=acct,
                               mutate=lambda h, b, host=host: ({**{k: v for k, v in h.items()
                                                                    if k.lower() != "host"}, "Host": host}, b))
            assert_refused(r, aws=True)
        assert org_aliases(srv.url, acct) == ["aws-rebound"]


def test_defect_06_allowed_host_is_served_and_others_are_not(guarded):
    url = guarded.url
    acct = new_account()
    make_client(url, account=acct).create_organization(Alias="container")
    json_ct = {"Content-Type": "application/json"}
    # How other containers reach a test container: http://workmail:4610 (case and port do not matter).
    for host in ["workmail:4610", "WorkMail", f"workmail:{guarded.port}"]:
        assert aws_list_orgs(url, acct, host=host).status == 200, host
        r = call_test_api(url, "POST", "/_workmail-pat/seed", b'{"Seed": 3}', {**json_ct, "Host": host})
        assert r.status == 200, (host, r)
    for host in [f"{EVIL}:4610", "workmail.evil.example", "notworkmail:4610"]:
        assert_refused(aws_list_orgs(url, acct, host=host), aws=True)
        assert_refused(call_test_api(url, "POST", "/_workmail-pat/reset", b"", {**json_ct, "Host": host}))
    assert org_aliases(url, acct) == ["container"]
    r = call_test_api(url, "POST", "/_workmail-pat/reset", partition_reset_body(acct),
                      {**json_ct, "Host": "workmail:4610", "Origin": "http://workmail:4610"})
    assert r.status == 200, r
    assert org_aliases(url, acct) == []


def test_defect_06_host_check_is_for_accept_any_only(tmp_path):
    """Accept-any refuses a foreign Host; SigV4 mode serves it, because the signature covers Host."""
    sigv4 = ServerProcess(
        tmp_path / "sigv4", name="sigv4",
        extra_args=["--auth", "sigv4", "--credentials-file", str(write_credentials(tmp_path))],
    ).start()
    any_srv = ServerProcess(tmp_path / "any", name="any").start()
    try:
        body = b"{}"
        for srv, expect in [(sigv4, 200), (any_srv, 403)]:
            # Signed for the Host the request really carries.
            hdrs = sign_headers(f"http://{EVIL}:{srv.port}", "WorkMailService.ListOrganizations", body,
                                access_key="AKIDTRUST", secret="trust-secret")
            r = raw_request(srv.url, "POST", "/", body, hdrs)
            assert r.status == expect, (srv.name, r)
            if expect == 403:
                assert_refused(r, aws=True)
    finally:
        assert sigv4.stop() == 0
        assert any_srv.stop() == 0


def write_credentials(tmp_path):
    path = tmp_path / "credentials"
    path.write_text("AKIDTRUST:trust-secret:111122223333\n")
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------------------------------------------ defect 7
@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """A server that knows it is reached over HTTPS (`--secure-cookies`)."""
    srv = ServerProcess(tmp_path_factory.mktemp("https"), name="https", extra_args=["--secure-cookies"]).start()
    yield srv
    assert srv.stop() == 0


def list_with_cookie(url: str, cookie: str):
    return webapp(url, "GET", "/webapp/api/personal-access-tokens", headers={"Cookie": cookie})


def get_with_headers(url: str, path: str, headers: list[tuple[str, str]]) -> int:
    """A GET sending these headers as given, repeated names included (raw_request takes a dict)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.putrequest("GET", path)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def token_names(r) -> set[str]:
    return {s["Name"] for s in r.json()["PersonalAccessTokenSummaries"]}


def test_defect_07_unprefixed_cookie_is_refused_over_https(https_server):
    url = https_server.url
    org = make_pat_org(url, users=("alice",))
    alice = org.users["alice"]
    alice.create_pat(name="alice-laptop")
    # Sanity: the cookie this server sets over HTTPS works.
    r = list_with_cookie(url, f"__Host-wmpat_session={alice.session}")
    assert r.status == 200, r
    assert token_names(r) == {"alice-laptop"}
    # The unprefixed name can be planted by a sibling subdomain or over plain HTTP: over HTTPS it is not a session.
    r = list_with_cookie(url, f"wmpat_session={alice.session}")
    assert r.status == 401, r
    page = raw_request(url, "GET", "/webapp/", b"", {"Cookie": f"wmpat_session={alice.session}"})
    assert page.status == 200, page
    assert b'action="/webapp/sign-in"' in page.body, "an unprefixed cookie signed the page in over HTTPS"
    page = raw_request(url, "GET", "/webapp/", b"", {"Cookie": f"__Host-wmpat_session={alice.session}"})
    assert b'action="/webapp/sign-in"' not in page.body


def test_defect_07_a_planted_cookie_never_wins(https_server):
    url = https_server.url
    org = make_pat_org(url, users=("alice", "mallory"))
    alice, mallory = org.users["alice"], org.users["mallory"]
    alice.create_pat(name="alice-only")
    # The attacker's own valid session, planted first under the unprefixed name: ignored, alice stays alice.
    r = list_with_cookie(url, f"wmpat_session={mallory.session}; __Host-wmpat_session={alice.session}")
    assert r.status == 200, r
    assert token_names(r) == {"alice-only"}, "the planted session was used"
    # Two session cookies of the name we use, whatever their order and even if both are valid: none is used.
    for cookie in [
        f"__Host-wmpat_session={mallory.session}; __Host-wmpat_session={alice.session}",
        f"__Host-wmpat_session={alice.session}; __Host-wmpat_session={alice.session}",
        f"__Host-wmpat_session={alice.session}; __Host-wmpat_session=junk",
    ]:
        r = list_with_cookie(url, cookie)
        assert r.status == 401, (cookie, r)
    # ... also when they come in two Cookie headers.
    status = get_with_headers(url, "/webapp/api/personal-access-tokens",
                              [("Cookie", f"__Host-wmpat_session={mallory.session}"),
                               ("Cookie", f"__Host-wmpat_session={alice.session}")])
    assert status == 401, status


def test_defect_07_plain_http_uses_the_unprefixed_cookie_only(url):
    org = make_pat_org(url, users=("alice",))
    alice = org.users["alice"]
    alice.create_pat(name="plain-pat")
    r = list_with_cookie(url, f"other=1; wmpat_session={alice.session}")
    assert r.status == 200, r
    assert token_names(r) == {"plain-pat"}
    # Over plain HTTP a browser never sends a `__Host-` cookie (it needs Secure); duplicates are refused here too.
    assert list_with_cookie(url, f"__Host-wmpat_session={alice.session}").status == 401
    r = list_with_cookie(url, f"wmpat_session={alice.session}; wmpat_session={alice.session}")
    assert r.status == 401, r


# ------------------------------------------------------------------------------------------------------ also
def test_also_metrics_are_for_local_scrapers_only(url):
    r = raw_request(url, "GET", "/metrics", None, {})
    assert r.status == 200, r
    assert b"workmail_pat_database_connections" in r.body, r
    # Behind a reverse proxy on this host every client connects from loopback; the proxy's forwarding headers show
    # the request is not a local scraper's, and the answer is that of an unknown path.
    unknown = raw_request(url, "GET", "/no-such-path", None, {})
    for h in [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}]:
        r = raw_request(url, "GET", "/metrics", None, h)
        assert r.status == 404, (h, r)
        assert r.body == unknown.body


def test_also_metrics_listen_moves_metrics_to_their_own_listener(tmp_path):
    srv = ServerProcess(tmp_path, name="metrics", extra_args=["--metrics-listen", "127.0.0.1:0"]).start()
    try:
        metrics_url = None
        deadline = time.monotonic() + 10
        while metrics_url is None and time.monotonic() < deadline:
            for line in list(srv.stdout_lines):
                if line.startswith("metrics on http://"):
                    metrics_url = line.split(" ", 2)[2].removesuffix("/metrics")
            if metrics_url is None:
                time.sleep(0.05)
        assert metrics_url, f"no 'metrics on' line: {srv.stdout_lines}"
        assert metrics_url != srv.url
        make_client(srv.url, account=new_account()).list_organizations()
        r = raw_request(metrics_url, "GET", "/metrics", None, {})
        assert r.status == 200, r
        assert b'workmail_pat_requests_total{operation="ListOrganizations",outcome="ok"}' in r.body, r
        assert raw_request(metrics_url, "GET", "/_workmail-pat/health", None, {}).status == 200
        # The metrics listener serves nothing else: no AWS API, no web page.
        assert raw_request(metrics_url, "POST", "/", b"{}", {"Content-Type": JSON_CT}).status == 404
        assert raw_request(metrics_url, "GET", "/webapp/", None, {}).status == 404
        # And the main listener no longer serves /metrics at all, not even to loopback.
        r = raw_request(srv.url, "GET", "/metrics", None, {})
        assert r.status == 404, r
        assert b"workmail_pat_" not in r.body
    finally:
        assert srv.stop() == 0


def test_also_access_key_on_the_command_line_warns(tmp_path):
    on_cmdline = ServerProcess(
        tmp_path / "cmdline", name="cmdline",
        extra_args=["--auth", "sigv4", "--access-key", "AKIDTRUST:trust-secret:111122223333"],
    ).start()
    from_file = ServerProcess(
        tmp_path / "file", name="file",
        extra_args=["--auth", "sigv4", "--credentials-file", str(write_credentials(tmp_path))],
    ).start()
    try:
        for srv in [on_cmdline, from_file]:
            # Both serve the key.
            hdrs = sign_headers(srv.url, "WorkMailService.ListOrganizations", b"{}", access_key="AKIDTRUST",
                                secret="trust-secret")
            assert raw_request(srv.url, "POST", "/", b"{}", hdrs).status == 200
    finally:
        assert on_cmdline.stop() == 0
        assert from_file.stop() == 0
    warned = [ln for ln in on_cmdline.stderr_tail(100_000).splitlines() if "--access-key" in ln]
    assert warned, f"no warning about --access-key:\n{on_cmdline.stderr_tail()}"
    assert "WARN" in warned[0] and "--credentials-file" in warned[0] and "process list" in warned[0], warned
    assert "trust-secret" not in on_cmdline.stderr_tail(100_000), "the secret itself was logged"
    assert "--access-key" not in from_file.stderr_tail(100_000)
