"""Mail domains and addresses (issue 15): RegisterMailDomain, DeregisterMailDomain, GetMailDomain, ListMailDomains,
UpdateDefaultMailDomain, CreateAlias, DeleteAlias, ListAliases and UpdatePrimaryEmailAddress through boto3 (every
modelled error the issue names) on both stores, the AWS CLI on each operation, and verification modes.

The store-parametrised tests run a `--domain-verification manual` server per backend (so PENDING domains exist and
`POST /_workmail-pat/domains/verify` marks them); PostgreSQL: $WORKMAIL_PAT_TEST_POSTGRES (default
postgres://postgres@127.0.0.1:5432, trust auth), as tests/python/test_trust_store.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import (
    PASSWORD,
    ServerProcess,
    make_client,
    make_org,
    new_account,
    raw_request,
    signed_request,
    run_aws,
    run_bin,
    unique_alias,
)

PG_SERVER = os.environ.get("WORKMAIL_PAT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def _pg_admin(sql: str):
    psql = shutil.which("psql")
    assert psql, "psql is needed to create test databases"
    r = subprocess.run(
        [psql, f"{PG_SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"cannot run {sql!r}: {r.stderr}"


def _pg_url(db: str) -> str:
    parts = urllib.parse.urlsplit(PG_SERVER)
    return f"{parts.scheme}://{parts.netloc}/{db}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def manual(request, tmp_path_factory):
    """A `--domain-verification manual` server with the test API, on each store; yields its URL."""
    work = tmp_path_factory.mktemp(f"domains-{request.param}")
    args = ["--domain-verification", "manual", "--enable-test-api"]
    db_url = None
    db = None
    if request.param == "postgres":
        db = f"wmpat_domains_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        _pg_admin(f"CREATE DATABASE {db}")
        db_url = _pg_url(db)
        args += ["--token-key-file", str(work / "token-key"), "--pepper-file", str(work / "pepper")]
    srv = ServerProcess(work, db_url=db_url, extra_args=args, name=request.param).start()
    try:
        yield srv.url
    finally:
        rc = srv.stop()
        log = srv.stderr_path.read_text("utf-8", "replace")
        if db:
            _pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        assert rc == 0, log[-3000:]
        assert "InternalFailure" not in log and "internal error" not in log, log[-3000:]


def new_domain() -> str:
    return f"d{uuid.uuid4().hex[:12]}.example.com"


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return e.value.response["Error"]["Code"]


def mark_verified(url: str, org_id: str, domain: str):
    r = raw_request(
        url, "POST", "/_workmail-pat/domains/verify",
        json.dumps({"OrganizationId": org_id, "DomainName": domain}), {"Content-Type": "application/json"},
    )
    assert r.status == 200, r
    assert r.json()["OwnershipVerificationStatus"] == "VERIFIED"


class Org:
    """An organization on a fresh account, with helpers for users and verified domains."""

    def __init__(self, url: str, account: str | None = None):
        self.url = url
        self.account = account or new_account()
        self.wm = make_client(url, account=self.account)
        o = make_org(self.wm, url, self.account)
        self.id, self.alias, self.test_domain = o.org_id, o.alias, o.domain

    def domain(self, verified: bool = True) -> str:
        d = new_domain()
        self.wm.register_mail_domain(OrganizationId=self.id, DomainName=d)
        if verified:
            mark_verified(self.url, self.id, d)
        return d

    def user(self, name: str | None = None, email_domain: str | None = None, register: bool = True) -> tuple[str, str]:
        name = name or f"u{uuid.uuid4().hex[:8]}"
        uid = self.wm.create_user(OrganizationId=self.id, Name=name, DisplayName=name, Password=PASSWORD)["UserId"]
        email = f"{name}@{email_domain or self.test_domain}"
        if register:
            self.wm.register_to_work_mail(OrganizationId=self.id, EntityId=uid, Email=email)
        return uid, email


# --------------------------------------------------------------------------------------------------------------
# Domains
# --------------------------------------------------------------------------------------------------------------
def test_test_domain_exists_from_creation_and_is_default(manual):
    o = Org(manual)
    out = o.wm.list_mail_domains(OrganizationId=o.id)
    assert out["MailDomains"] == [{"DomainName": o.test_domain, "DefaultDomain": True}]
    assert "NextToken" not in out
    got = o.wm.get_mail_domain(OrganizationId=o.id, DomainName=o.test_domain.upper())
    assert got["IsTestDomain"] is True and got["IsDefault"] is True
    assert got["OwnershipVerificationStatus"] == "VERIFIED" and got["DkimVerificationStatus"] == "VERIFIED"
    assert got["Records"] == []


def test_domains_given_to_create_organization_are_registered_and_verified(manual):
    account = new_account()
    wm = make_client(manual, account=account)
    d = new_domain()
    alias = unique_alias()
    org_id = wm.create_organization(Alias=alias, Domains=[{"DomainName": d.upper()}])["OrganizationId"]
    names = {m["DomainName"]: m["DefaultDomain"] for m in wm.list_mail_domains(OrganizationId=org_id)["MailDomains"]}
    assert names == {f"{alias}.awsapps.com": True, d: False}
    got = wm.get_mail_domain(OrganizationId=org_id, DomainName=d)
    assert got["IsTestDomain"] is False and got["OwnershipVerificationStatus"] == "VERIFIED"
    # The same domain in another organization of the account is taken.
    other = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    assert code_of(wm.register_mail_domain, OrganizationId=other, DomainName=d) == "MailDomainInUseException"


def test_registered_domain_is_pending_with_records_until_verified(manual):
    o = Org(manual)
    d = o.domain(verified=False)
    got = o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d)
    assert got["OwnershipVerificationStatus"] == "PENDING" and got["DkimVerificationStatus"] == "PENDING"
    assert got["IsTestDomain"] is False and got["IsDefault"] is False
    records = got["Records"]
    kinds = [r["Type"] for r in records]
    assert kinds.count("TXT") == 1 and kinds.count("CNAME") == 4 and kinds.count("MX") == 1
    txt = next(r for r in records if r["Type"] == "TXT")
    assert txt["Hostname"] == f"_amazonses.{d}." and len(txt["Value"]) >= 32
    dkim = [r for r in records if r["Hostname"].endswith(f"._domainkey.{d}.")]
    assert len(dkim) == 3 and all(r["Value"].endswith(".dkim.amazonses.com.") for r in dkim)
    assert any(r["Hostname"] == f"autodiscover.{d}." for r in records)
    # The value is random: another domain has another one.
    d2 = o.domain(verified=False)
    txt2 = next(r for r in o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d2)["Records"] if r["Type"] == "TXT")
    assert txt2["Value"] != txt["Value"]

    # Everything that puts an address or the default on it waits for verification.
    uid, _ = o.user()
    new_uid, _ = o.user(register=False)
    for fn, kwargs in [
        (o.wm.update_default_mail_domain, {"DomainName": d}),
        (o.wm.create_alias, {"EntityId": uid, "Alias": f"x@{d}"}),
        (o.wm.update_primary_email_address, {"EntityId": uid, "Email": f"x@{d}"}),
        (o.wm.register_to_work_mail, {"EntityId": new_uid, "Email": f"y@{d}"}),
    ]:
        assert code_of(fn, OrganizationId=o.id, **kwargs) == "MailDomainStateException", fn

    mark_verified(manual, o.id, d)
    got = o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d)
    assert got["OwnershipVerificationStatus"] == "VERIFIED" and got["DkimVerificationStatus"] == "VERIFIED"
    o.wm.update_default_mail_domain(OrganizationId=o.id, DomainName=d)
    assert o.wm.describe_organization(OrganizationId=o.id)["DefaultMailDomain"] == d
    assert o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d)["IsDefault"] is True
    assert o.wm.get_mail_domain(OrganizationId=o.id, DomainName=o.test_domain)["IsDefault"] is False
    defaults = [m for m in o.wm.list_mail_domains(OrganizationId=o.id)["MailDomains"] if m["DefaultDomain"]]
    assert defaults == [{"DomainName": d, "DefaultDomain": True}]
    o.wm.register_to_work_mail(OrganizationId=o.id, EntityId=new_uid, Email=f"y@{d}")


def test_verify_endpoint_refuses_unknown_domains(manual):
    o = Org(manual)
    r = raw_request(
        manual, "POST", "/_workmail-pat/domains/verify",
        json.dumps({"OrganizationId": o.id, "DomainName": new_domain()}), {"Content-Type": "application/json"},
    )
    assert r.status == 404 and r.json()["__type"] == "MailDomainNotFoundException", r


def test_unregistered_domain_is_not_found(manual):
    o = Org(manual)
    d = new_domain()
    uid, _ = o.user()
    new_uid, _ = o.user(register=False)
    assert code_of(o.wm.get_mail_domain, OrganizationId=o.id, DomainName=d) == "MailDomainNotFoundException"
    for fn, kwargs in [
        (o.wm.update_default_mail_domain, {"DomainName": d}),
        (o.wm.create_alias, {"EntityId": uid, "Alias": f"x@{d}"}),
        (o.wm.update_primary_email_address, {"EntityId": uid, "Email": f"x@{d}"}),
        (o.wm.register_to_work_mail, {"EntityId": new_uid, "Email": f"y@{d}"}),
    ]:
        assert code_of(fn, OrganizationId=o.id, **kwargs) == "MailDomainNotFoundException", fn


def test_domain_belongs_to_one_live_organization_per_partition(manual):
    a = Org(manual)
    d = a.domain()
    b = Org(manual, account=a.account)
    assert code_of(b.wm.register_mail_domain, OrganizationId=b.id, DomainName=d) == "MailDomainInUseException"
    assert code_of(b.wm.register_mail_domain, OrganizationId=b.id, DomainName=d.upper()) == "MailDomainInUseException"
    # Again in the same organization with another ClientToken: taken too.
    assert code_of(a.wm.register_mail_domain, OrganizationId=a.id, DomainName=d, ClientToken="other-token") == (
        "MailDomainInUseException"
    )
    # Another account (another partition) may hold the same name.
    c = Org(manual)
    c.wm.register_mail_domain(OrganizationId=c.id, DomainName=d)
    # Test domains are AWS's: one's own is registered already, any other awsapps.com name is refused.
    assert code_of(b.wm.register_mail_domain, OrganizationId=b.id, DomainName=b.test_domain) == (
        "MailDomainInUseException"
    )
    assert code_of(b.wm.register_mail_domain, OrganizationId=b.id, DomainName=a.test_domain) == (
        "InvalidParameterException"
    )
    assert code_of(b.wm.register_mail_domain, OrganizationId=b.id, DomainName=f"zz{uuid.uuid4().hex[:6]}.awsapps.com") == (
        "InvalidParameterException"
    )
    # Deleting the organization frees its domains.
    a.wm.delete_organization(OrganizationId=a.id, DeleteDirectory=False)
    b.wm.register_mail_domain(OrganizationId=b.id, DomainName=d)


def test_register_mail_domain_client_token_replays(manual):
    o = Org(manual)
    d = new_domain()
    o.wm.register_mail_domain(OrganizationId=o.id, DomainName=d, ClientToken="tok-1")
    o.wm.register_mail_domain(OrganizationId=o.id, DomainName=d, ClientToken="tok-1")
    e = code_of(o.wm.register_mail_domain, OrganizationId=o.id, DomainName=new_domain(), ClientToken="tok-1")
    assert e == "InvalidParameterException"
    assert [m["DomainName"] for m in o.wm.list_mail_domains(OrganizationId=o.id)["MailDomains"]].count(d) == 1


def test_register_mail_domain_validation(manual):
    o = Org(manual)
    for bad in ["ab", "bad_domain.com", "x" * 210]:
        r = signed_request(manual, "RegisterMailDomain", {"OrganizationId": o.id, "DomainName": bad}, account=o.account)
        assert r.status == 400 and r.json()["__type"] == "InvalidParameterException", (bad, r)
    missing = "m-" + "0" * 32
    assert code_of(o.wm.register_mail_domain, OrganizationId=missing, DomainName=new_domain()) == (
        "OrganizationNotFoundException"
    )
    for op in ("get_mail_domain", "update_default_mail_domain", "deregister_mail_domain"):
        assert code_of(getattr(o.wm, op), OrganizationId=missing, DomainName=new_domain()) == (
            "OrganizationNotFoundException"
        )
    assert code_of(o.wm.list_mail_domains, OrganizationId=missing) == "OrganizationNotFoundException"
    # A deleted organization is in the wrong state for every domain operation.
    o.wm.delete_organization(OrganizationId=o.id, DeleteDirectory=False)
    assert code_of(o.wm.register_mail_domain, OrganizationId=o.id, DomainName=new_domain()) == (
        "OrganizationStateException"
    )
    assert code_of(o.wm.list_mail_domains, OrganizationId=o.id) == "OrganizationStateException"
    assert code_of(o.wm.list_aliases, OrganizationId=o.id, EntityId="x" * 12) == "OrganizationStateException"


def test_deregister_mail_domain_rules(manual):
    o = Org(manual)
    d = o.domain()
    # The default domain (the test domain at first) is in use.
    assert code_of(o.wm.deregister_mail_domain, OrganizationId=o.id, DomainName=o.test_domain) == (
        "MailDomainInUseException"
    )
    o.wm.update_default_mail_domain(OrganizationId=o.id, DomainName=d)
    assert code_of(o.wm.deregister_mail_domain, OrganizationId=o.id, DomainName=d) == "MailDomainInUseException"
    o.wm.update_default_mail_domain(OrganizationId=o.id, DomainName=o.test_domain)
    # An alias uses it.
    uid, _ = o.user()
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"al@{d}")
    assert code_of(o.wm.deregister_mail_domain, OrganizationId=o.id, DomainName=d) == "MailDomainInUseException"
    o.wm.delete_alias(OrganizationId=o.id, EntityId=uid, Alias=f"al@{d}")
    # A primary address uses it.
    uid2, _ = o.user(email_domain=d)
    assert code_of(o.wm.deregister_mail_domain, OrganizationId=o.id, DomainName=d) == "MailDomainInUseException"
    o.wm.deregister_from_work_mail(OrganizationId=o.id, EntityId=uid2)
    o.wm.deregister_mail_domain(OrganizationId=o.id, DomainName=d)
    assert code_of(o.wm.get_mail_domain, OrganizationId=o.id, DomainName=d) == "MailDomainNotFoundException"
    # Not registered (any more): nothing to do.
    o.wm.deregister_mail_domain(OrganizationId=o.id, DomainName=d)
    # The test domain stays with the organization.
    d3 = o.domain()
    o.wm.update_default_mail_domain(OrganizationId=o.id, DomainName=d3)
    assert code_of(o.wm.deregister_mail_domain, OrganizationId=o.id, DomainName=o.test_domain) == (
        "InvalidParameterException"
    )


def test_list_mail_domains_pages_with_sealed_tokens(manual):
    o = Org(manual)
    mine = {o.domain(verified=False) for _ in range(5)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"OrganizationId": o.id, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        out = o.wm.list_mail_domains(**kwargs)
        pages += 1
        assert len(out["MailDomains"]) <= 2
        seen += [m["DomainName"] for m in out["MailDomains"]]
        token = out.get("NextToken")
        if not token:
            break
    assert pages == 3 and seen[0] == o.test_domain and set(seen[1:]) == mine and len(seen) == 6
    first = o.wm.list_mail_domains(OrganizationId=o.id, MaxResults=1)["NextToken"]
    other = Org(manual)
    assert code_of(other.wm.list_mail_domains, OrganizationId=other.id, NextToken=first) == "InvalidParameterException"
    assert code_of(o.wm.list_mail_domains, OrganizationId=o.id, NextToken=first[:-2] + "AA") == (
        "InvalidParameterException"
    )
    assert code_of(o.wm.list_mail_domains, OrganizationId=o.id, NextToken="plain-offset-3") == (
        "InvalidParameterException"
    )


# --------------------------------------------------------------------------------------------------------------
# Aliases and primary addresses
# --------------------------------------------------------------------------------------------------------------
def test_aliases_lifecycle_and_errors(manual):
    o = Org(manual)
    d = o.domain()
    uid, email = o.user()
    other, other_email = o.user()
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"Al1@{d}")
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"al2@{o.test_domain}")
    # Idempotent for the same user.
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"al1@{d}")
    assert o.wm.list_aliases(OrganizationId=o.id, EntityId=uid)["Aliases"] == [f"Al1@{d}", f"al2@{o.test_domain}"]
    # Unique in the organization: against other users' aliases and every primary address (any case).
    for taken in [f"AL1@{d}", other_email, email.upper()]:
        assert code_of(o.wm.create_alias, OrganizationId=o.id, EntityId=other, Alias=taken) == (
            "EmailAddressInUseException"
        ), taken
    # A primary address cannot be taken by registration either.
    new_uid, _ = o.user(register=False)
    assert code_of(o.wm.register_to_work_mail, OrganizationId=o.id, EntityId=new_uid, Email=f"al1@{d}") == (
        "EmailAddressInUseException"
    )
    # Unregistered (DISABLED) and DELETED users hold no addresses.
    for op, kwargs in [
        (o.wm.create_alias, {"Alias": f"z@{d}"}),
        (o.wm.delete_alias, {"Alias": f"z@{d}"}),
        (o.wm.list_aliases, {}),
    ]:
        assert code_of(op, OrganizationId=o.id, EntityId=new_uid, **kwargs) == "EntityStateException"
    o.wm.delete_user(OrganizationId=o.id, UserId=new_uid)
    assert code_of(o.wm.create_alias, OrganizationId=o.id, EntityId=new_uid, Alias=f"z@{d}") == "EntityStateException"
    assert code_of(o.wm.list_aliases, OrganizationId=o.id, EntityId=new_uid) == "EntityStateException"
    missing = str(uuid.uuid4())
    for op, kwargs in [
        (o.wm.create_alias, {"Alias": f"z@{d}"}),
        (o.wm.delete_alias, {"Alias": f"z@{d}"}),
        (o.wm.list_aliases, {}),
        (o.wm.update_primary_email_address, {"Email": f"z@{d}"}),
    ]:
        assert code_of(op, OrganizationId=o.id, EntityId=missing, **kwargs) == "EntityNotFoundException"
    # DeleteAlias: the primary address is not an alias; an unknown alias is no error.
    assert code_of(o.wm.delete_alias, OrganizationId=o.id, EntityId=uid, Alias=email) == "InvalidParameterException"
    o.wm.delete_alias(OrganizationId=o.id, EntityId=uid, Alias=f"never@{d}")
    o.wm.delete_alias(OrganizationId=o.id, EntityId=uid, Alias=f"AL1@{d}")
    assert o.wm.list_aliases(OrganizationId=o.id, EntityId=uid)["Aliases"] == [f"al2@{o.test_domain}"]
    # Freed: another user may take it now.
    o.wm.create_alias(OrganizationId=o.id, EntityId=other, Alias=f"al1@{d}")
    # Any identifier resolves the user (id, name, email).
    assert o.wm.list_aliases(OrganizationId=o.id, EntityId=other_email)["Aliases"] == [f"al1@{d}"]


def test_list_aliases_paginator_and_limit_of_100(manual):
    o = Org(manual)
    d = o.domain()
    uid, _ = o.user()
    for i in range(100):
        o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"a{i:03d}@{d}")
    assert code_of(o.wm.create_alias, OrganizationId=o.id, EntityId=uid, Alias=f"a100@{d}") == "LimitExceededException"
    pages = list(
        o.wm.get_paginator("list_aliases").paginate(
            OrganizationId=o.id, EntityId=uid, PaginationConfig={"PageSize": 30}
        )
    )
    assert [len(p["Aliases"]) for p in pages] == [30, 30, 30, 10]
    assert [a for p in pages for a in p["Aliases"]] == [f"a{i:03d}@{d}" for i in range(100)]
    # A token is bound to its user.
    token = pages[0]["NextToken"]
    other, _ = o.user()
    assert code_of(o.wm.list_aliases, OrganizationId=o.id, EntityId=other, NextToken=token) == (
        "InvalidParameterException"
    )
    # Deleting one makes room for one.
    o.wm.delete_alias(OrganizationId=o.id, EntityId=uid, Alias=f"a000@{d}")
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"a100@{d}")


def test_update_primary_email_address_keeps_the_old_one_as_an_alias(manual):
    o = Org(manual)
    d = o.domain()
    uid, email = o.user()
    other, other_email = o.user()
    o.wm.update_primary_email_address(OrganizationId=o.id, EntityId=uid, Email=f"new@{d}")
    assert o.wm.describe_user(OrganizationId=o.id, UserId=uid)["Email"] == f"new@{d}"
    users = {u["Id"]: u for u in o.wm.list_users(OrganizationId=o.id)["Users"]}
    assert users[uid]["Email"] == f"new@{d}"
    assert o.wm.list_aliases(OrganizationId=o.id, EntityId=uid)["Aliases"] == [email]
    # An alias of the user may be promoted; the previous primary becomes an alias.
    o.wm.update_primary_email_address(OrganizationId=o.id, EntityId=uid, Email=email)
    assert o.wm.describe_user(OrganizationId=o.id, UserId=uid)["Email"] == email
    assert o.wm.list_aliases(OrganizationId=o.id, EntityId=uid)["Aliases"] == [f"new@{d}"]
    # The same address again: nothing changes.
    o.wm.update_primary_email_address(OrganizationId=o.id, EntityId=uid, Email=email)
    # Someone else's primary address or alias is in use.
    assert code_of(o.wm.update_primary_email_address, OrganizationId=o.id, EntityId=uid, Email=other_email) == (
        "EmailAddressInUseException"
    )
    o.wm.create_alias(OrganizationId=o.id, EntityId=other, Alias=f"oa@{d}")
    assert code_of(o.wm.update_primary_email_address, OrganizationId=o.id, EntityId=uid, Email=f"oa@{d}") == (
        "EmailAddressInUseException"
    )
    new_uid, _ = o.user(register=False)
    assert code_of(o.wm.update_primary_email_address, OrganizationId=o.id, EntityId=new_uid, Email=f"q@{d}") == (
        "EntityStateException"
    )


def test_delete_user_and_deregistration_release_addresses(manual):
    o = Org(manual)
    d = o.domain()
    uid, email = o.user()
    o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"keep@{d}")
    o.wm.deregister_from_work_mail(OrganizationId=o.id, EntityId=uid)
    b, _ = o.user()
    o.wm.create_alias(OrganizationId=o.id, EntityId=b, Alias=email)
    o.wm.create_alias(OrganizationId=o.id, EntityId=b, Alias=f"keep@{d}")
    o.wm.deregister_from_work_mail(OrganizationId=o.id, EntityId=b)
    o.wm.delete_user(OrganizationId=o.id, UserId=b)
    c, _ = o.user(email_domain=d)
    o.wm.update_primary_email_address(OrganizationId=o.id, EntityId=c, Email=email)
    o.wm.create_alias(OrganizationId=o.id, EntityId=c, Alias=f"keep@{d}")
    # DescribeUser of the deleted user keeps answering (without the released addresses mattering).
    assert o.wm.describe_user(OrganizationId=o.id, UserId=b)["State"] == "DELETED"


# --------------------------------------------------------------------------------------------------------------
# Verification mode auto (the default) and the AWS CLI
# --------------------------------------------------------------------------------------------------------------
def test_auto_verification_is_the_default(url):
    o = Org(url)
    d = new_domain()
    o.wm.register_mail_domain(OrganizationId=o.id, DomainName=d)
    got = o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d)
    assert got["OwnershipVerificationStatus"] == "VERIFIED" and got["DkimVerificationStatus"] == "VERIFIED"
    assert len(got["Records"]) == 6
    o.wm.update_default_mail_domain(OrganizationId=o.id, DomainName=d)


def test_aws_cli_runs_every_domain_and_alias_operation(manual):
    url = manual
    account = new_account()
    wm = make_client(url, account=account)
    o = make_org(wm, url, account)
    uid = wm.create_user(OrganizationId=o.org_id, Name="carol", DisplayName="Carol", Password=PASSWORD)["UserId"]
    wm.register_to_work_mail(OrganizationId=o.org_id, EntityId=uid, Email=f"carol@{o.domain}")
    d = new_domain()

    def aws(*args):
        r = run_aws(url, list(args), account=account)
        assert r.returncode == 0, r.stderr
        return r.json() if r.stdout.strip() else {}

    org = ["--organization-id", o.org_id]
    aws("register-mail-domain", *org, "--domain-name", d)
    got = aws("get-mail-domain", *org, "--domain-name", d)
    assert got["OwnershipVerificationStatus"] == "PENDING" and len(got["Records"]) == 6
    r = run_aws(url, ["update-default-mail-domain", *org, "--domain-name", d], account=account)
    assert r.returncode != 0 and "MailDomainStateException" in r.stderr
    mark_verified(url, o.org_id, d)
    assert aws("get-mail-domain", *org, "--domain-name", d)["OwnershipVerificationStatus"] == "VERIFIED"
    listed = aws("list-mail-domains", *org)
    assert {m["DomainName"] for m in listed["MailDomains"]} == {o.domain, d}
    aws("update-default-mail-domain", *org, "--domain-name", d)
    aws("create-alias", *org, "--entity-id", uid, "--alias", f"c1@{d}")
    aws("create-alias", *org, "--entity-id", uid, "--alias", f"c2@{d}")
    # The CLI's own paginator (it follows NextToken with --page-size).
    assert aws("list-aliases", *org, "--entity-id", uid, "--page-size", "1")["Aliases"] == [f"c1@{d}", f"c2@{d}"]
    aws("delete-alias", *org, "--entity-id", uid, "--alias", f"c2@{d}")
    aws("update-primary-email-address", *org, "--entity-id", uid, "--email", f"carol@{d}")
    assert wm.describe_user(OrganizationId=o.org_id, UserId=uid)["Email"] == f"carol@{d}"
    aws("update-default-mail-domain", *org, "--domain-name", o.domain)
    r = run_aws(url, ["deregister-mail-domain", *org, "--domain-name", d], account=account)
    assert r.returncode != 0 and "MailDomainInUseException" in r.stderr
    r = run_aws(url, ["get-mail-domain", *org, "--domain-name", new_domain()], account=account)
    assert r.returncode != 0 and "MailDomainNotFoundException" in r.stderr
    r = run_aws(url, ["create-alias", *org, "--entity-id", uid, "--alias", f"carol@{d}"], account=account)
    assert r.returncode != 0 and "EmailAddressInUseException" in r.stderr
    aws("update-primary-email-address", *org, "--entity-id", uid, "--email", f"carol@{o.domain}")
    aws("delete-alias", *org, "--entity-id", uid, "--alias", f"c1@{d}")
    aws("delete-alias", *org, "--entity-id", uid, "--alias", f"carol@{d}")
    aws("deregister-mail-domain", *org, "--domain-name", d)


def test_domain_verify_cli_marks_a_pending_domain(tmp_path):
    db = tmp_path / "wm.db"
    srv = ServerProcess(tmp_path, db_path=db, extra_args=["--domain-verification", "manual"], name="cli").start()
    try:
        o = Org(srv.url)
        d = o.domain(verified=False)
        r = run_bin(["domain", "verify", "--database", f"sqlite:{db}", "--organization-id", o.id, d.upper()])
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["DomainName"] == d
        got = o.wm.get_mail_domain(OrganizationId=o.id, DomainName=d)
        assert got["OwnershipVerificationStatus"] == "VERIFIED"
        r = run_bin(["domain", "verify", "--database", f"sqlite:{db}", "--organization-id", o.id, new_domain()])
        assert r.returncode != 0 and "not registered" in r.stderr
        # `dump` carries the domains and every user's aliases.
        uid, _ = o.user(email_domain=d)
        o.wm.create_alias(OrganizationId=o.id, EntityId=uid, Alias=f"dumped@{d}")
        r = run_bin(["dump", "--database", f"sqlite:{db}"])
        assert r.returncode == 0, r.stderr
        dumped = next(x for x in json.loads(r.stdout)["Organizations"] if x["OrganizationId"] == o.id)
        assert {m["DomainName"]: m["OwnershipVerificationStatus"] for m in dumped["MailDomains"]} == {
            o.test_domain: "VERIFIED", d: "VERIFIED"
        }
        assert next(u for u in dumped["Users"] if u["UserId"] == uid)["Aliases"] == [f"dumped@{d}"]
    finally:
        assert srv.stop() == 0
