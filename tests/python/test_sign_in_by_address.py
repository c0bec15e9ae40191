"""Signing in and verifying by email address alone (issue 15): `POST /webapp/api/sessions`, the page's sign-in form
and `POST /auth/v1/verify` accept `OrganizationId` as optional; an address's verified domain names the one live
organization. Unknown, unverified and ambiguous domains, and usernames without a domain, fail exactly like a wrong
password (same 401, same body, no measurable timing difference), and the limits hold on the new paths.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid

import pytest

from conftest import (
    PASSWORD,
    SESSION_401,
    ServerProcess,
    VERIFY_401,
    assert_verify_401,
    make_client,
    make_pat_org,
    new_account,
    raw_request,
    webapp,
)


def sign_in(url, username, password=PASSWORD, org_id=None):
    body = {"Username": username, "Password": password}
    if org_id is not None:
        body["OrganizationId"] = org_id
    return webapp(url, "POST", "/webapp/api/sessions", body)


def verify(url, username, token, org_id=None, scope="IMAP"):
    body = {"Username": username, "Token": token, "Scope": scope}
    if org_id is not None:
        body["OrganizationId"] = org_id
    return webapp(url, "POST", "/auth/v1/verify", body)


def new_domain() -> str:
    return f"s{uuid.uuid4().hex[:12]}.example.org"


@pytest.fixture
def org(url):
    """An organization with its own verified domain, alice registered there with an alias, and a PAT of hers."""
    o = make_pat_org(url, users=())
    domain = new_domain()
    o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=domain)
    uid = o.client.create_user(OrganizationId=o.org_id, Name="alice", DisplayName="Alice", Password=PASSWORD)["UserId"]
    o.client.register_to_work_mail(OrganizationId=o.org_id, EntityId=uid, Email=f"alice@{domain}")
    o.client.create_alias(OrganizationId=o.org_id, EntityId=uid, Alias=f"ally@{domain}")
    r = sign_in(url, f"alice@{domain}")
    assert r.status == 200, r
    session = r.json()["SessionToken"]
    r = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": "mail"}, bearer=session)
    assert r.status == 201, r
    o.domain = domain
    o.user_id = uid
    o.secret = r.json()["Token"]
    o.token_id = r.json()["PersonalAccessTokenId"]
    return o


def test_sign_in_by_primary_address_or_alias_without_organization(url, org):
    for login in [f"alice@{org.domain}", f"ALICE@{org.domain.upper()}", f"ally@{org.domain}"]:
        r = sign_in(url, login)
        assert r.status == 200, (login, r)
        assert r.json()["OrganizationId"] == org.org_id and r.json()["UserId"] == org.user_id
    # With the organization named, aliases work too; the username still needs it.
    assert sign_in(url, f"ally@{org.domain}", org_id=org.org_id).status == 200
    assert sign_in(url, "alice", org_id=org.org_id).status == 200
    r = sign_in(url, "alice")
    assert r.status == 401 and r.json() == SESSION_401, r


def test_sign_in_failures_are_uniform(url, org):
    other = make_pat_org(url, users=())
    cases = [
        f"alice@{org.domain}",  # wrong password (below)
        f"nobody@{org.domain}",  # unknown user of a known domain
        f"alice@{new_domain()}",  # unknown domain
        f"alice@{other.domain[:-len('.awsapps.com')]}.example.net",  # nobody's domain
        "alice",  # username without organization
        "alice@",  # not an address
    ]
    for login in cases:
        r = sign_in(url, login, password="Wrong-Passw0rd!")
        assert r.status == 401 and r.json() == SESSION_401, (login, r)
    for login in cases[1:]:
        r = sign_in(url, login)
        assert r.status == 401 and r.json() == SESSION_401, (login, r)


def test_ambiguous_or_unverified_domain_resolves_to_nobody(tmp_path):
    srv = ServerProcess(tmp_path, extra_args=["--domain-verification", "manual", "--enable-test-api"]).start()
    try:
        url = srv.url
        a = make_pat_org(url, users=())
        domain = new_domain()
        a.client.register_mail_domain(OrganizationId=a.org_id, DomainName=domain)
        mark = lambda org_id: raw_request(  # noqa: E731
            url, "POST", "/_workmail-pat/domains/verify",
            json.dumps({"OrganizationId": org_id, "DomainName": domain}), {"Content-Type": "application/json"},
        )
        assert mark(a.org_id).status == 200
        uid = a.client.create_user(OrganizationId=a.org_id, Name="bob", DisplayName="Bob", Password=PASSWORD)["UserId"]
        a.client.register_to_work_mail(OrganizationId=a.org_id, EntityId=uid, Email=f"bob@{domain}")
        assert sign_in(url, f"bob@{domain}").status == 200
        # The same domain registered (pending) in another account: still one verified owner.
        b = make_pat_org(url, users=())
        b.client.register_mail_domain(OrganizationId=b.org_id, DomainName=domain)
        assert sign_in(url, f"bob@{domain}").status == 200
        # Verified there too: ambiguous, so nobody (the named organization still works).
        assert mark(b.org_id).status == 200
        r = sign_in(url, f"bob@{domain}")
        assert r.status == 401 and r.json() == SESSION_401, r
        assert sign_in(url, f"bob@{domain}", org_id=a.org_id).status == 200
    finally:
        assert srv.stop() == 0


def test_verify_by_address_without_organization(url, org):
    for login in [f"alice@{org.domain}", f"ally@{org.domain}", f"Ally@{org.domain.upper()}"]:
        r = verify(url, login, org.secret)
        assert r.status == 200, (login, r)
        assert r.json() == {
            "OrganizationId": org.org_id,
            "UserId": org.user_id,
            "PersonalAccessTokenId": org.token_id,
        }
    # Named organization: the answer names it too.
    r = verify(url, f"ally@{org.domain}", org.secret, org_id=org.org_id)
    assert r.status == 200 and r.json()["OrganizationId"] == org.org_id
    # Username without organization, unknown domain, someone else's address: the uniform 401.
    other = make_pat_org(url, users=("carol",))
    for login in ["alice", f"alice@{new_domain()}", other.users["carol"].email]:
        assert_verify_401(verify(url, login, org.secret))
    # An alias removed stops working at once; the primary still works.
    org.client.delete_alias(OrganizationId=org.org_id, EntityId=org.user_id, Alias=f"ally@{org.domain}")
    assert_verify_401(verify(url, f"ally@{org.domain}", org.secret))
    assert verify(url, f"alice@{org.domain}", org.secret).status == 200


def test_page_form_signs_in_by_email_alone(url, org):
    r = raw_request(url, "GET", "/webapp/", b"", {})
    page = r.body.decode()
    assert ">Email address<" in page and 'name="organization_id"' in page
    assert "required" not in page.split('id="organization_id"')[1].split(">")[0]
    form = f"username=alice%40{org.domain}&password={PASSWORD.replace('!', '%21')}"
    r = raw_request(url, "POST", "/webapp/sign-in", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                            "Origin": url})
    assert r.status == 303, r
    form = f"username=alice%40{new_domain()}&password={PASSWORD.replace('!', '%21')}"
    r = raw_request(url, "POST", "/webapp/sign-in", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                            "Origin": url})
    assert r.status == 401, r


def test_limits_hold_on_address_sign_in(tmp_path):
    srv = ServerProcess(tmp_path, extra_args=["--user-failures", "3", "--ip-failures", "1000"]).start()
    try:
        url = srv.url
        o = make_pat_org(url, users=())
        domain = new_domain()
        o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=domain)
        uid = o.client.create_user(OrganizationId=o.org_id, Name="dan", DisplayName="Dan", Password=PASSWORD)["UserId"]
        o.client.register_to_work_mail(OrganizationId=o.org_id, EntityId=uid, Email=f"dan@{domain}")
        o.client.create_alias(OrganizationId=o.org_id, EntityId=uid, Alias=f"d@{domain}")
        # Failures through the alias, the address and the username share one budget (the resolved user).
        statuses = [
            sign_in(url, f"d@{domain}", password="Wrong-1a!").status,
            sign_in(url, f"dan@{domain}", password="Wrong-1a!").status,
            sign_in(url, "dan", password="Wrong-1a!", org_id=o.org_id).status,
        ]
        assert statuses == [401, 401, 401]
        assert sign_in(url, f"dan@{domain}").status == 429
        # Unknown names of unknown domains are limited the same way.
        ghost = f"ghost@{new_domain()}"
        assert [sign_in(url, ghost, password="Wrong-1a!").status for _ in range(3)] == [401, 401, 401]
        assert sign_in(url, ghost, password="Wrong-1a!").status == 429
    finally:
        assert srv.stop() == 0


def test_timing_does_not_reveal_domains_or_users(tmp_path):
    """Median sign-in times of a wrong password for a real address, an unknown user of a known domain, an unknown
    domain and a username without organization stay within a narrow band (the Argon2 work is done against the
    dummy hash on every refusal); the same for verification. Its own server, so no other test's load (or abandoned
    hashing jobs) skews one kind; the kinds are measured in a shuffled order each round after a warm-up."""
    import random

    srv = ServerProcess(tmp_path).start()
    try:
        url = srv.url
        o = make_pat_org(url, users=())
        domain = new_domain()
        o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=domain)
        uid = o.client.create_user(OrganizationId=o.org_id, Name="tim", DisplayName="Tim", Password=PASSWORD)["UserId"]
        o.client.register_to_work_mail(OrganizationId=o.org_id, EntityId=uid, Email=f"tim@{domain}")
        logins = {
            "real": f"tim@{domain}",
            "unknown_user": f"nobody{uuid.uuid4().hex[:6]}@{domain}",
            "unknown_domain": f"tim@{new_domain()}",
            "username_only": "tim",
        }
        times = {k: [] for k in logins}
        for round_no in range(10):
            kinds = list(logins)
            random.shuffle(kinds)
            for kind in kinds:
                started = time.perf_counter()
                r = sign_in(url, logins[kind], password="Wrong-Passw0rd!")
                elapsed = time.perf_counter() - started
                assert r.status == 401 and r.json() == SESSION_401, (kind, r)
                if round_no:
                    times[kind].append(elapsed)
        medians = {k: statistics.median(v) for k, v in times.items()}
        assert max(medians.values()) < min(medians.values()) * 1.5 + 0.005, medians

        # Verification: a wrong token for a real address and for an unknown domain.
        r = sign_in(url, f"tim@{domain}")
        session = r.json()["SessionToken"]
        created = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": "t"}, bearer=session).json()
        secret = created["Token"]
        bad = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
        vt = {"real": [], "unknown_domain": []}
        for round_no in range(16):
            pairs = [("real", f"tim@{domain}"), ("unknown_domain", f"tim@{new_domain()}")]
            random.shuffle(pairs)
            for kind, login in pairs:
                started = time.perf_counter()
                r = verify(url, login, bad)
                elapsed = time.perf_counter() - started
                assert r.status == 401 and r.json() == VERIFY_401
                if round_no:
                    vt[kind].append(elapsed)
        vm = {k: statistics.median(v) for k, v in vt.items()}
        assert max(vm.values()) < min(vm.values()) * 2 + 0.005, vm
    finally:
        assert srv.stop() == 0


def test_new_account_cannot_see_other_accounts_domains(url, org):
    """Domain resolution spans accounts (an address names its organization wherever it is), but the AWS API stays
    partitioned: another account cannot read the domain."""
    wm = make_client(url, account=new_account())
    with pytest.raises(Exception):
        wm.get_mail_domain(OrganizationId=org.org_id, DomainName=org.domain)


def test_idna_domains_match_in_either_form(url):
    o = make_pat_org(url, users=())
    label = f"b\u00fccher{uuid.uuid4().hex[:6]}"
    ascii_label = label.encode("idna").decode()
    domain = f"{ascii_label}.example"
    o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=domain)
    uid = o.client.create_user(OrganizationId=o.org_id, Name="uli", DisplayName="Uli", Password=PASSWORD)["UserId"]
    o.client.register_to_work_mail(OrganizationId=o.org_id, EntityId=uid, Email=f"uli@{domain}")
    for login in [f"uli@{domain}", f"uli@{label}.example", f"ULI@{label.upper()}.EXAMPLE"]:
        r = sign_in(url, login)
        assert r.status == 200 and r.json()["OrganizationId"] == o.org_id, (login, r)
    session = sign_in(url, f"uli@{domain}").json()["SessionToken"]
    token = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": "idna"}, bearer=session).json()["Token"]
    r = verify(url, f"uli@{label}.example", token)
    assert r.status == 200 and r.json()["UserId"] == uid, r
