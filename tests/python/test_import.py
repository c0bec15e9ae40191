"""Issue 16: `workmail-pat import` copies organizations, keeping their ids, from a WorkMail API endpoint into a
workmail-pat database; `dump` fed to `seed` restores a store with the same ids.

The source ("AWS") is a second `workmail-pat serve --auth sigv4` with real access keys: organizations in two
accounts and two regions, ENABLED, DISABLED and DELETED users, tokens of several users, a Deleted organization.
Everything the API shows is compared through boto3 against both servers.

PostgreSQL: $WORKMAIL_PAT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432, trust auth).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (
    BIN,
    PatOrg,
    ServerProcess,
    error_code,
    make_client,
    make_org,
    run_bin,
    verify,
)

PG_SERVER = os.environ.get("WORKMAIL_PAT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")

ACC_A, AK_A, SK_A = "111122223333", "AKIAIMPORTSOURCEAAAA", "source-secret-key-aaaaaaaaaaaaaaaaaaaaaa"
ACC_B, AK_B, SK_B = "444455556666", "AKIAIMPORTSOURCEBBBB", "source-secret-key-bbbbbbbbbbbbbbbbbbbbbb"
# (access key, secret, account, region): one import run each, as against AWS (credentials and region select).
PARTITIONS = [
    (AK_A, SK_A, ACC_A, "us-east-1"),
    (AK_A, SK_A, ACC_A, "eu-west-1"),
    (AK_B, SK_B, ACC_B, "us-east-1"),
]


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def source_client(url, ak, sk, region):
    return make_client(url, region=region, access_key=ak, secret=sk)


def import_env(ak=AK_A, sk=SK_A) -> dict:
    env = dict(os.environ)
    env["AWS_ACCESS_KEY_ID"] = ak
    env["AWS_SECRET_ACCESS_KEY"] = sk
    return env


def import_args(src_url, db, region, *extra) -> list[str]:
    return [BIN, "import", "--database", db, "--endpoint-url", src_url, "--region", region, *extra]


def run_import(src_url, db, ak, sk, region, *extra, timeout=300) -> subprocess.CompletedProcess:
    args = import_args(src_url, db, region, *extra)
    if "--organization-id" not in extra:
        args.append("--all")
    if "--max-requests-per-second" not in extra:
        args += ["--max-requests-per-second", "2000"]
    return subprocess.run(
        args, env=import_env(ak, sk), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def import_all(src_url, db, tmp: Path, tag: str) -> list[dict]:
    """One import run per (credentials, region); their reports."""
    reports = []
    for i, (ak, sk, _acc, region) in enumerate(PARTITIONS):
        report = tmp / f"{tag}-{i}.json"
        r = run_import(src_url, db, ak, sk, region, "--report", str(report))
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        reports.append(json.loads(report.read_text()))
    return reports


def strip(d: dict) -> dict:
    d = dict(d)
    d.pop("ResponseMetadata", None)
    return d


def pages(call, key, **kw) -> list[list]:
    """Every page (items only) with two items a page: the pagination order itself is compared."""
    out, token = [], None
    while True:
        args = dict(kw, MaxResults=2)
        if token:
            args["NextToken"] = token
        r = call(**args)
        out.append(r[key])
        token = r.get("NextToken")
        if not token:
            return out


def snapshot(client) -> dict:
    """Every Describe/List answer of a partition (tokens aside: they never leave the source)."""
    s = {"orgs": pages(client.list_organizations, "OrganizationSummaries")}
    for page in s["orgs"]:
        for o in page:
            oid = o["OrganizationId"]
            s[oid] = strip(client.describe_organization(OrganizationId=oid))
            if o["State"] != "Active":
                continue
            try:
                s[oid + "/config"] = strip(client.describe_identity_provider_configuration(OrganizationId=oid))
            except ClientError as e:
                s[oid + "/config"] = error_code(e)
            users = pages(client.list_users, "Users", OrganizationId=oid)
            s[oid + "/users"] = users
            s[oid + "/described"] = [
                strip(client.describe_user(OrganizationId=oid, UserId=u["Id"])) for p in users for u in p
            ]
            enabled = [u["Id"] for p in users for u in p if u["State"] == "ENABLED"]
            s[oid + "/mail"] = mail_snapshot(client, oid, enabled)
    return s


def source_tokens(url) -> dict[str, dict]:
    out = {}
    for ak, sk, _acc, region in PARTITIONS:
        c = source_client(url, ak, sk, region)
        for page in pages(c.list_organizations, "OrganizationSummaries"):
            for o in page:
                if o["State"] != "Active":
                    continue
                for p in pages(c.list_personal_access_tokens, "PersonalAccessTokenSummaries",
                               OrganizationId=o["OrganizationId"]):
                    for t in p:
                        out[t["PersonalAccessTokenId"]] = t
    return out


def reported_tokens(reports) -> dict[str, dict]:
    out = {}
    for r in reports:
        for o in r["Organizations"]:
            for u in o["TokensToRecreate"]:
                for t in u["Tokens"]:
                    out[t["PersonalAccessTokenId"]] = dict(t, UserId=u["UserId"])
    return out


def compare_servers(src_url, target_url):
    for ak, sk, acc, region in PARTITIONS:
        source = snapshot(source_client(src_url, ak, sk, region))
        target = snapshot(make_client(target_url, account=acc, region=region))
        assert source["orgs"], f"no organizations at the source in {acc}/{region}"
        assert target == source, f"{acc}/{region} differs"


def add_user(org: PatOrg, name: str, register=True, login=True, password: str | None = "Passw0rd!Aa"):
    if password is None:
        uid = org.client.create_user(OrganizationId=org.org_id, Name=name, DisplayName=f"{name} display")["UserId"]
        if register:
            org.client.register_to_work_mail(OrganizationId=org.org_id, EntityId=uid, Email=f"{name}@{org.domain}")
        return uid
    return org.add_user(name, register=register, login=login)


def build_source(url, db: str) -> dict:
    """Organizations in two accounts and two regions; returns what the tests refer to."""
    a_east = source_client(url, AK_A, SK_A, "us-east-1")
    a_west = source_client(url, AK_A, SK_A, "eu-west-1")
    b_east = source_client(url, AK_B, SK_B, "us-east-1")

    org1 = make_org(a_east, url, ACC_A)
    org1.put_pat_config(lifetime=30)
    alice = add_user(org1, "alice")
    alice.create_pat("laptop", ["IMAP"])
    alice.create_pat("phone")
    bob = add_user(org1, "bob")
    bob.create_pat("ci", ["SMTP"])
    a_east.update_user(
        OrganizationId=org1.org_id, UserId=bob.user_id, FirstName="Bob", LastName="Builder", Initials="BB",
        JobTitle="Engineer", City="Oslo", Company="Acme", Department="R&D", Country="NO", Office="3",
        Street="1 Main St", Telephone="+4712345678", ZipCode="0150", HiddenFromGlobalAddressList=True,
        Role="REMOTE_USER",
    )
    # Mail domains: one PENDING, one verified and made the default; bob's primary address and alice's aliases.
    mail = add_mail(a_east, org1, db, alice.user_id)
    a_east.update_primary_email_address(OrganizationId=org1.org_id, EntityId=bob.user_id,
                                        Email=f"bob@{mail['verified']}")
    carol = add_user(org1, "carol")
    carol.create_pat("old")
    a_east.deregister_from_work_mail(OrganizationId=org1.org_id, EntityId=carol.user_id)  # DISABLED
    dave = add_user(org1, "dave", login=False)
    a_east.deregister_from_work_mail(OrganizationId=org1.org_id, EntityId=dave.user_id)
    a_east.delete_user(OrganizationId=org1.org_id, UserId=dave.user_id)  # DELETED
    add_user(org1, "erin", register=False)  # DISABLED, never registered
    for i in range(5):
        add_user(org1, f"user{i}", password=None)

    gone = make_org(a_east, url, ACC_A)
    a_east.delete_organization(OrganizationId=gone.org_id, DeleteDirectory=True)

    org3 = make_org(a_west, url, ACC_A)
    org3.put_pat_config(lifetime=90)
    frank = add_user(org3, "frank")
    frank.create_pat("west")
    add_user(org3, "grace", password=None)

    org4 = make_org(b_east, url, ACC_B)
    org4.put_pat_config(lifetime=7)
    gina = add_user(org4, "gina")
    b_east.create_alias(OrganizationId=org4.org_id, EntityId=gina.user_id, Alias=f"regina@{org4.domain}")
    for n in ("a", "b", "c"):
        gina.create_pat(n)
    add_user(org4, "hank", password=None)
    org5 = make_org(b_east, url, ACC_B)  # no PAT configuration, no users
    return {"org1": org1, "gone": gone, "org3": org3, "org4": org4, "org5": org5, "bob": bob, "alice": alice,
            "mail": mail}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    work = tmp_path_factory.mktemp("import-source")
    creds = work / "credentials"
    creds.write_text(f"{AK_A}:{SK_A}:{ACC_A}\n{AK_B}:{SK_B}:{ACC_B}\n")
    srv = ServerProcess(work, extra_args=["--auth", "sigv4", "--credentials-file", str(creds),
                                          "--domain-verification", "manual"], name="source")
    srv.start()
    try:
        srv.data = build_source(srv.url, srv.db_url)
        yield srv
    finally:
        srv.stop()


def pg_admin(sql: str):
    psql = shutil.which("psql")
    assert psql, "psql is needed to create test databases"
    r = subprocess.run([psql, f"{PG_SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"cannot run {sql!r} on {PG_SERVER}: {r.stderr}"


@pytest.fixture
def pg_db():
    name = f"wmpat_import_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def dump(db: str, *extra) -> dict:
    r = run_bin(["dump", "--database", db, *extra])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------
def test_import_into_sqlite_copies_everything_with_ids_and_a_second_run_is_a_no_op(source, tmp_path):
    db = f"sqlite:{tmp_path / 'target.db'}"
    reports = import_all(source.url, db, tmp_path, "first")
    # The report lists every token of the source, with its owner and metadata.
    src_tokens = source_tokens(source.url)
    assert len(src_tokens) >= 7
    got = reported_tokens(reports)
    assert set(got) == set(src_tokens)
    for tid, t in src_tokens.items():
        for key in ("Name", "Scopes", "UserId"):
            assert got[tid][key] == t[key], (tid, key)
        assert abs(got[tid]["DateCreated"] - t["DateCreated"].timestamp()) < 0.002
    # Users get no password: every live user is listed.
    org1 = next(o for o in reports[0]["Organizations"] if o["OrganizationId"] == source.data["org1"].org_id)
    assert {u["Name"] for u in org1["UsersWithoutPassword"]} == {"alice", "bob", "carol", "erin"} | {
        f"user{i}" for i in range(5)
    }
    assert org1["Counts"]["User"] == {"Created": 10, "Updated": 0, "Unchanged": 0, "Skipped": 0}
    assert org1["Counts"]["MailDomain"] == {"Created": 3, "Updated": 0, "Unchanged": 0, "Skipped": 0}
    # alice's three aliases, and bob's former primary address (UpdatePrimaryEmailAddress keeps it as an alias).
    assert org1["Counts"]["Alias"] == {"Created": 4, "Updated": 0, "Unchanged": 0, "Skipped": 0}
    assert reports[0]["Changed"] is True

    before = dump(db)
    target = ServerProcess(tmp_path / "t", db_path=tmp_path / "target.db", name="target").start()
    try:
        compare_servers(source.url, target.url)
    finally:
        target.stop()

    # Again: nothing changes, and it says so.
    for i, (ak, sk, _acc, region) in enumerate(PARTITIONS):
        r = run_import(source.url, db, ak, sk, region, "--report", str(tmp_path / f"again-{i}.json"))
        assert r.returncode == 0, r.stderr
        assert "nothing changed" in r.stdout, r.stdout
        again = json.loads((tmp_path / f"again-{i}.json").read_text())
        assert again["Changed"] is False
        assert all(c["Created"] == 0 for o in again["Organizations"] for c in o["Counts"].values())
    assert dump(db) == before


def test_import_into_postgres(source, tmp_path, pg_db):
    import_all(source.url, pg_db, tmp_path, "pg")
    keys = ["--token-key-file", str(tmp_path / "tk"), "--pepper-file", str(tmp_path / "pp")]
    target = ServerProcess(tmp_path / "t", db_url=pg_db, extra_args=keys, name="pg-target").start()
    try:
        compare_servers(source.url, target.url)
    finally:
        target.stop()


def test_dry_run_prints_the_plan_and_writes_nothing(source, tmp_path):
    db = f"sqlite:{tmp_path / 'dry.db'}"
    report = tmp_path / "dry.json"
    r = run_import(source.url, db, AK_A, SK_A, "us-east-1", "--dry-run", "--report", str(report))
    assert r.returncode == 0, r.stderr
    assert "would be created" in r.stdout and "dry run: nothing was written" in r.stdout, r.stdout
    plan = json.loads(report.read_text())
    assert plan["DryRun"] is True and plan["Changed"] is True
    assert sum(o["Counts"].get("User", {}).get("Created", 0) for o in plan["Organizations"]) == 10
    org1 = next(o for o in plan["Organizations"] if o["OrganizationId"] == source.data["org1"].org_id)
    assert org1["Counts"]["MailDomain"]["Created"] == 3 and org1["Counts"]["Alias"]["Created"] == 4
    assert dump(db) == {"Organizations": []}


def test_credentials_come_from_the_standard_configuration_chain(source, tmp_path):
    """A named profile of the AWS configuration files (no key in the environment); a wrong key fails (exit 1)."""
    (tmp_path / "credentials").write_text(
        f"[importer]\naws_access_key_id = {AK_B}\naws_secret_access_key = {SK_B}\n"
        f"[wrong]\naws_access_key_id = {AK_B}\naws_secret_access_key = not-the-secret\n"
    )
    (tmp_path / "config").write_text("[profile importer]\nregion = us-east-1\n[profile wrong]\nregion = us-east-1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_EC2_METADATA_DISABLED="true")
    db = f"sqlite:{tmp_path / 'p.db'}"
    base = [BIN, "import", "--database", db, "--endpoint-url", source.url, "--all", "--max-requests-per-second",
            "2000", "--max-attempts", "1"]
    r = subprocess.run(base + ["--profile", "importer"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {o["OrganizationId"] for o in dump(db)["Organizations"]} == {
        source.data["org4"].org_id, source.data["org5"].org_id
    }
    r = subprocess.run(base + ["--profile", "wrong"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "ListOrganizations" in r.stderr, r.stderr


def test_a_conflict_is_reported_and_skipped_never_overwritten(source, tmp_path):
    db = f"sqlite:{tmp_path / 'c.db'}"
    org1, bob = source.data["org1"], source.data["bob"]
    r = run_import(source.url, db, AK_A, SK_A, "us-east-1", "--organization-id", org1.org_id)
    assert r.returncode == 0, r.stderr
    # Someone changes bob in the target; an alias of the source is taken by another organization of the target.
    target = ServerProcess(tmp_path / "t", db_path=tmp_path / "c.db", name="c-target").start()
    try:
        t = make_client(target.url, account=ACC_A)
        t.update_user(OrganizationId=org1.org_id, UserId=bob.user_id, JobTitle="Changed here")
        squatter = t.create_organization(Alias=source.data["org4"].alias)["OrganizationId"]
        # A user the source does not have (as if deleted there since the last run): reported, not deleted.
        extra = t.create_user(OrganizationId=org1.org_id, Name="zed", DisplayName="zed")["UserId"]
    finally:
        target.stop()
    report = tmp_path / "c.json"
    r = run_import(source.url, db, AK_A, SK_A, "us-east-1", "--organization-id", org1.org_id,
                   "--report", str(report))
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    org_report = json.loads(report.read_text())["Organizations"][0]
    assert [(g["Entity"], g["Id"], g["Name"]) for g in org_report["DeletedAtSource"]] == [("User", extra, "zed")]
    assert "zed" in r.stdout and "no longer at the source" in r.stdout
    skipped = org_report["Skipped"]
    assert [(s["Entity"], s["Id"]) for s in skipped] == [("User", bob.user_id)]
    assert "JobTitle" in skipped[0]["Reason"]
    bob_now = [u for o in dump(db)["Organizations"] for u in o["Users"] if u["UserId"] == bob.user_id]
    assert bob_now[0]["JobTitle"] == "Changed here"
    assert extra in {u["UserId"] for o in dump(db)["Organizations"] for u in o["Users"]}
    # The alias of org4 (account B) is held in account B's partition of the target: that organization is skipped.
    r = run_import(source.url, db, AK_B, SK_B, "us-east-1", "--report", str(report))
    # Account A's target organization of that alias is in another partition: no conflict there.
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert squatter


def test_an_alias_held_in_the_same_partition_is_a_conflict(source, tmp_path):
    db_path = tmp_path / "a.db"
    target = ServerProcess(tmp_path / "t", db_path=db_path, name="a-target").start()
    try:
        make_client(target.url, account=ACC_B).create_organization(Alias=source.data["org4"].alias)
    finally:
        target.stop()
    report = tmp_path / "a.json"
    r = run_import(source.url, f"sqlite:{db_path}", AK_B, SK_B, "us-east-1", "--report", str(report))
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    orgs = json.loads(report.read_text())["Organizations"]
    org4 = next(o for o in orgs if o["OrganizationId"] == source.data["org4"].org_id)
    assert org4["Skipped"][0]["Entity"] == "Organization" and "alias" in org4["Skipped"][0]["Reason"]
    assert "skipped" in r.stdout
    ids = {o["OrganizationId"] for o in dump(f"sqlite:{db_path}")["Organizations"]}
    assert source.data["org4"].org_id not in ids and source.data["org5"].org_id in ids


def test_mail_domain_and_alias_conflicts_are_reported_and_skipped(source, tmp_path):
    """A domain another organization of the partition holds in the target is skipped, with the default domain and
    what lives in it (bob's address, an alias); an alias the target gives to another user is skipped; the rest is
    imported, and nothing of the target is overwritten."""
    org1, bob, alice, mail = (source.data[k] for k in ("org1", "bob", "alice", "mail"))
    db_path = tmp_path / "m.db"
    target = ServerProcess(tmp_path / "t", db_path=db_path, name="m-target").start()
    try:
        t = make_client(target.url, account=ACC_A)
        squatter = t.create_organization(Alias="squat" + uuid.uuid4().hex[:8])["OrganizationId"]
        t.register_mail_domain(OrganizationId=squatter, DomainName=mail["verified"])
    finally:
        target.stop()
    report = tmp_path / "m.json"
    args = ("--organization-id", org1.org_id, "--report", str(report))
    r = run_import(source.url, f"sqlite:{db_path}", AK_A, SK_A, "us-east-1", *args)
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    o = json.loads(report.read_text())["Organizations"][0]
    skipped = {(s["Entity"], s["Id"]) for s in o["Skipped"]}
    in_verified = [a for a in mail["aliases"] if a.endswith(mail["verified"])]
    assert skipped == {("MailDomain", mail["verified"]), ("DefaultMailDomain", org1.org_id),
                       ("User", bob.user_id), ("Alias", f"bob@{org1.domain}")} | {
                           ("Alias", a) for a in in_verified}, o["Skipped"]
    assert o["Counts"]["MailDomain"] == {"Created": 2, "Updated": 0, "Unchanged": 0, "Skipped": 1}
    target = ServerProcess(tmp_path / "t", db_path=db_path, name="m-target").start()
    try:
        t = make_client(target.url, account=ACC_A)
        domains = {d["DomainName"]: d for p in pages(t.list_mail_domains, "MailDomains", OrganizationId=squatter)
                   for d in p}
        assert mail["verified"] in domains  # still the squatter's
        got = {d["DomainName"]: d["DefaultDomain"]
               for p in pages(t.list_mail_domains, "MailDomains", OrganizationId=org1.org_id) for d in p}
        assert got == {org1.domain: True, mail["pending"]: False}
        in_test = [a for a in mail["aliases"] if a.endswith(org1.domain)]
        assert t.list_aliases(OrganizationId=org1.org_id, EntityId=alice.user_id)["Aliases"] == in_test
        # An alias of alice's is taken from her and given to another user in the target.
        t.delete_alias(OrganizationId=org1.org_id, EntityId=alice.user_id, Alias=in_test[0])
        yan = t.create_user(OrganizationId=org1.org_id, Name="yan", DisplayName="yan", Password="Passw0rd!Aa")
        t.register_to_work_mail(OrganizationId=org1.org_id, EntityId=yan["UserId"], Email=f"yan@{org1.domain}")
        t.create_alias(OrganizationId=org1.org_id, EntityId=yan["UserId"], Alias=in_test[0])
    finally:
        target.stop()
    r = run_import(source.url, f"sqlite:{db_path}", AK_A, SK_A, "us-east-1", *args)
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    o = json.loads(report.read_text())["Organizations"][0]
    alias_skips = [s for s in o["Skipped"] if s["Entity"] == "Alias" and s["Id"] == in_test[0]]
    assert alias_skips and yan["UserId"] in alias_skips[0]["Reason"], o["Skipped"]
    assert o["Counts"]["MailDomain"] == {"Created": 0, "Updated": 0, "Unchanged": 2, "Skipped": 1}
    assert "Created" not in {k for c in o["Counts"].values() for k, v in c.items() if k == "Created" and v}
    holders = {a: u["UserId"] for org in dump(f"sqlite:{db_path}")["Organizations"] for u in org["Users"]
               for a in u["Aliases"]}
    assert holders[in_test[0]] == yan["UserId"]


def test_passwords_from_a_file_follow_reset_password_rules(source, tmp_path):
    db_path = tmp_path / "p.db"
    org1 = source.data["org1"]
    pw = tmp_path / "passwords.csv"
    pw.write_text(f"# user id or email,password\nalice@{org1.domain},New-Passw0rd,1\n{source.data['bob'].user_id},weak\n")
    report = tmp_path / "p.json"
    plan = tmp_path / "plan.json"
    r = run_import(source.url, f"sqlite:{db_path}", AK_A, SK_A, "us-east-1", "--organization-id", org1.org_id,
                   "--passwords-from", str(pw), "--report", str(plan), "--dry-run")
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    assert json.loads(plan.read_text())["Organizations"][0]["Counts"]["Password"] == {
        "Created": 1, "Updated": 0, "Unchanged": 0, "Skipped": 1}
    r = run_import(source.url, f"sqlite:{db_path}", AK_A, SK_A, "us-east-1", "--organization-id", org1.org_id,
                   "--passwords-from", str(pw), "--report", str(report))
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"  # bob's password is too weak: skipped
    o = json.loads(report.read_text())["Organizations"][0]
    assert o["Counts"]["Password"] == {"Created": 1, "Updated": 0, "Unchanged": 0, "Skipped": 1}
    assert "alice" not in {u["Name"] for u in o["UsersWithoutPassword"]}
    target = ServerProcess(tmp_path / "t", db_path=db_path, name="p-target").start()
    try:
        from conftest import sign_in

        assert sign_in(target.url, org1.org_id, "alice", "New-Passw0rd,1").status == 200
    finally:
        target.stop()
    # Again: alice's password is kept (not reset again), bob's is still refused.
    r = run_import(source.url, f"sqlite:{db_path}", AK_A, SK_A, "us-east-1", "--organization-id", org1.org_id,
                   "--passwords-from", str(pw), "--report", str(report))
    assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
    assert json.loads(report.read_text())["Organizations"][0]["Counts"]["Password"] == {
        "Created": 0, "Updated": 0, "Unchanged": 1, "Skipped": 1}


def test_an_interrupted_import_completes_on_rerun(tmp_path):
    work = tmp_path / "src"
    src = ServerProcess(work, name="flaky-source").start()
    acc = "777788889999"
    c = make_client(src.url, account=acc)
    org = make_org(c, src.url, acc)
    org.put_pat_config()
    for i in range(120):
        add_user(org, f"person{i:03d}", register=(i % 2 == 0), password=None)
    db = f"sqlite:{tmp_path / 'i.db'}"
    env = import_env(acc, "dummy-secret-key")
    p = subprocess.Popen(
        import_args(src.url, db, "us-east-1", "--all", "--max-requests-per-second", "40", "--max-attempts", "2"),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        # Plain progress lines (stderr is not a terminal): kill the source once the first users are written.
        for line in p.stderr:
            if "users read" in line:
                break
        src.kill()
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, err
    partial = dump(db)["Organizations"]
    assert 0 < len(partial[0]["Users"]) < 120
    src.start()
    r = subprocess.run(import_args(src.url, db, "us-east-1", "--all", "--max-requests-per-second", "2000"),
                       env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert len(dump(db)["Organizations"][0]["Users"]) == 120
    target = ServerProcess(tmp_path / "t", db_path=tmp_path / "i.db", name="i-target").start()
    try:
        assert snapshot(make_client(target.url, account=acc)) == snapshot(make_client(src.url, account=acc))
    finally:
        target.stop()
        src.stop()


def test_throttling_at_the_source_slows_the_import_without_failing_it(tmp_path):
    src = ServerProcess(tmp_path / "src", name="strict-source", extra_args=["--api-rate", "4", "--api-burst", "2"])
    src.start()
    try:
        acc = "121212121212"
        c = make_client(src.url, account=acc, max_attempts=10)
        org = make_org(c, src.url, acc)
        for i in range(8):
            add_user(org, f"t{i}", password=None)
        time.sleep(1)
        db = f"sqlite:{tmp_path / 't.db'}"
        started = time.monotonic()
        r = run_import(src.url, db, acc, "dummy-secret-key", "us-east-1", "--max-requests-per-second", "100")
        took = time.monotonic() - started
        assert r.returncode == 0, r.stderr
        assert len(dump(db)["Organizations"][0]["Users"]) == 8
        metrics = urllib.request.urlopen(src.url + "/metrics", timeout=10).read().decode()
        throttled = re.findall(r'workmail_pat_requests_total\{operation="(\w+)",outcome="ThrottlingException"\} (\d+)',
                               metrics)
        assert sum(int(n) for _, n in throttled) > 0, metrics
        assert took > 2, took  # ~13 requests at 4 a second
    finally:
        src.stop()


def add_mail(client, org: PatOrg, db: str, user_id: str) -> dict:
    """Mail domains and aliases (issue 15) on an organization of a `--domain-verification manual` server: one
    domain left PENDING, one verified (`workmail-pat domain verify`) and made the default, aliases in both the
    verified domain and the test domain."""
    tag = uuid.uuid4().hex[:10]
    pending, verified = f"p{tag}.example.com", f"v{tag}.example.org"
    for d in (pending, verified):
        client.register_mail_domain(OrganizationId=org.org_id, DomainName=d)
    r = run_bin(["domain", "verify", "--database", db, "--organization-id", org.org_id, verified])
    assert r.returncode == 0, r.stderr
    client.update_default_mail_domain(OrganizationId=org.org_id, DomainName=verified)
    aliases = [f"z{tag}@{verified}", f"a{tag}@{org.domain}", f"m{tag}@{verified}"]
    for a in aliases:
        client.create_alias(OrganizationId=org.org_id, EntityId=user_id, Alias=a)
    return {"pending": pending, "verified": verified, "aliases": aliases}


def mail_snapshot(client, org_id: str, user_ids) -> dict:
    """ListMailDomains, GetMailDomain of each, ListAliases of each user (pages of two)."""
    domains = pages(client.list_mail_domains, "MailDomains", OrganizationId=org_id)
    s = {"domains": domains}
    for page in domains:
        for d in page:
            s[d["DomainName"]] = strip(client.get_mail_domain(OrganizationId=org_id, DomainName=d["DomainName"]))
    for uid in user_ids:
        s[uid] = pages(client.list_aliases, "Aliases", OrganizationId=org_id, EntityId=uid)
    return s


def test_dump_fed_to_seed_restores_the_same_state_with_the_same_ids(tmp_path):
    """Every kind of entity: two partitions, a Deleted organization, ENABLED/DISABLED/DELETED users with every
    profile field, PAT configurations, tokens (one used), mail domains PENDING and VERIFIED with a default that is
    not the test domain, aliases."""
    db_path = tmp_path / "orig.db"
    srv = ServerProcess(tmp_path / "o", db_path=db_path, name="orig",
                        extra_args=["--domain-verification", "manual"]).start()
    try:
        acc = "343434343434"
        east = make_client(srv.url, account=acc)
        west = make_client(srv.url, account=acc, region="ap-southeast-2")
        org = make_org(east, srv.url, acc)
        org.put_pat_config(lifetime=45)
        u = org.add_user("ann")
        tok = u.create_pat("mail", ["IMAP"])
        u.create_pat("smtp", ["SMTP"])
        assert verify(srv.url, org.org_id, "ann", tok["Token"]).status == 200
        east.update_user(OrganizationId=org.org_id, UserId=u.user_id, FirstName="Ann", LastName="Lee",
                         JobTitle="Ops", HiddenFromGlobalAddressList=True, IdentityProviderUserId="0123456789-12345678-1234-1234-1234-123456789abc")
        mail = add_mail(east, org, f"sqlite:{db_path}", u.user_id)
        d = org.add_user("dan", login=False)
        east.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=d.user_id)
        x = org.add_user("xia", login=False)
        east.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=x.user_id)
        east.delete_user(OrganizationId=org.org_id, UserId=x.user_id)
        gone = make_org(east, srv.url, acc)
        gone.add_user("gus", login=False)
        east.delete_organization(OrganizationId=gone.org_id, DeleteDirectory=True, ForceDelete=True)
        w = make_org(west, srv.url, acc)
        w.put_pat_config(status="INACTIVE", lifetime=10)
        w.add_user("wes", login=False)
        before = mail_snapshot(east, org.org_id, [u.user_id])
    finally:
        srv.stop()
    original = dump(f"sqlite:{db_path}")
    kinds = {(o["State"], u["State"]) for o in original["Organizations"] for u in o["Users"]}
    assert {("Active", "ENABLED"), ("Active", "DISABLED"), ("Active", "DELETED")} <= kinds
    assert "Deleted" in {o["State"] for o in original["Organizations"]}
    assert any(t.get("DateLastUsed") for o in original["Organizations"] for t in o["PersonalAccessTokens"])
    statuses = {(m["DomainName"], m["OwnershipVerificationStatus"], m["DefaultDomain"])
                for o in original["Organizations"] for m in o["MailDomains"]}
    assert {(mail["pending"], "PENDING", False), (mail["verified"], "VERIFIED", True)} <= statuses
    assert [a for o in original["Organizations"] for x in o["Users"] for a in x["Aliases"]] == mail["aliases"]
    dump_file = tmp_path / "dump.json"
    dump_file.write_text(json.dumps(original))
    copy = f"sqlite:{tmp_path / 'copy.db'}"
    r = run_bin(["seed", "--database", copy, str(dump_file)])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {s["PersonalAccessTokenId"] for s in out["NewTokenSecrets"]} == {
        t["PersonalAccessTokenId"] for o in original["Organizations"] for t in o["PersonalAccessTokens"]
    }
    assert dump(copy) == original
    # Seeding the same dump again changes nothing.
    r = run_bin(["seed", "--database", copy, str(dump_file)])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Restored"]["Changed"] is False
    assert dump(copy) == original
    # The API answers the same: domains (their records too), the default, aliases in their order.
    srv = ServerProcess(tmp_path / "c", db_url=copy, name="copy").start()
    try:
        after = mail_snapshot(make_client(srv.url, account=acc), org.org_id, [u.user_id])
    finally:
        srv.stop()
    assert after == before
    assert before[mail["pending"]]["OwnershipVerificationStatus"] == "PENDING"
    assert before[mail["verified"]]["IsDefault"] is True
    assert [a for p in before[u.user_id] for a in p] == mail["aliases"]


def test_a_user_the_target_refuses_is_skipped_alone(tmp_path):
    """A page of new users is written in one transaction; when the target refuses one of them (here an id that
    another organization's user holds), the others are still written and only that one is skipped."""
    db_path = tmp_path / "orig.db"
    srv = ServerProcess(tmp_path / "o", db_path=db_path, name="orig").start()
    try:
        acc = "565656565656"
        org = make_org(make_client(srv.url, account=acc), srv.url, acc)
        taken = org.add_user("ann", login=False).user_id
    finally:
        srv.stop()
    db = f"sqlite:{db_path}"
    doc = dump(db)
    other = json.loads(json.dumps(doc["Organizations"][0]))
    alias = "other" + uuid.uuid4().hex[:8]
    other.update(OrganizationId="m-" + uuid.uuid4().hex, Alias=alias, DefaultMailDomain=f"{alias}.awsapps.com",
                 DirectoryId="d-" + uuid.uuid4().hex[:10], PersonalAccessTokens=[],
                 MailDomains=[dict(other["MailDomains"][0], DomainName=f"{alias}.awsapps.com")])
    fresh = dict(other["Users"][0], UserId=str(uuid.uuid4()), Name="bea", Email=None, State="DISABLED")
    other["Users"] = [dict(other["Users"][0], Name="clash", Email=None, State="DISABLED"), fresh]
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"Organizations": [other]}))
    r = run_bin(["seed", "--database", db, str(path)])
    assert r.returncode == 1, r.stdout
    assert taken in r.stderr and "1 entities of the dump were not restored" in r.stderr, r.stderr
    users = {u["UserId"]: o["OrganizationId"] for o in dump(db)["Organizations"] for u in o["Users"]}
    assert users[fresh["UserId"]] == other["OrganizationId"]
    assert users[taken] == org.org_id


def import_with_report(tmp_path, source_url: str, db: str, env: dict, *extra_args):
    """Imports everything `source_url` holds into `db`; returns the process and the first organization's report."""
    report = tmp_path / f"r{uuid.uuid4().hex[:6]}.json"
    r = subprocess.run(import_args(source_url, db, "us-east-1", "--all", "--max-requests-per-second", "2000",
                                   "--report", str(report), *extra_args),
                       env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return r, json.loads(report.read_text())["Organizations"][0]


@pytest.fixture(params=["sqlite", "postgres"])
def target_db(request, tmp_path):
    """An empty target: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'target.db'}", []
        return
    name = f"wmpat_import_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}", ["--token-key-file", str(tmp_path / "tk"), "--pepper-file", str(tmp_path / "pp")]
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_changes_at_the_source_are_updates_and_local_edits_are_conflicts(tmp_path, target_db):
    """After a first import: a display name changed, a user disabled, the PAT lifetime changed and a mail domain
    deregistered at the source. A dry run lists the updates and writes nothing; a real run applies them (the API
    answers as the source's); a third run is a no-op; the domain gone from the source is reported, not deleted. A
    user edited in the target and then changed at the source is a conflict: skipped (exit 2), the edit kept."""
    db, keys = target_db
    src = ServerProcess(tmp_path / "src", name="updates-source").start()
    target = None
    try:
        acc = "989898989898"
        c = make_client(src.url, account=acc)
        org = make_org(c, src.url, acc)
        org.put_pat_config(lifetime=30)
        ann = add_user(org, "ann", password=None)
        ben = add_user(org, "ben", password=None)
        cat = add_user(org, "cat", password=None)
        add_user(org, "dan", password=None)
        extra = f"x{uuid.uuid4().hex[:8]}.example.com"
        c.register_mail_domain(OrganizationId=org.org_id, DomainName=extra)
        env = import_env(acc, "dummy-secret-key")

        def run(*extra_args):
            return import_with_report(tmp_path, src.url, db, env, *extra_args)

        r, first = run()
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert first["Counts"]["User"]["Created"] == 4
        before = dump(db, *keys)

        c.update_user(OrganizationId=org.org_id, UserId=ann, DisplayName="Ann at the source")
        c.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=ben)
        org.put_pat_config(lifetime=60)
        c.deregister_mail_domain(OrganizationId=org.org_id, DomainName=extra)

        r, plan = run("--dry-run")
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert plan["Counts"]["User"] == {"Created": 0, "Updated": 2, "Unchanged": 2, "Skipped": 0}
        assert plan["Counts"]["Configuration"]["Updated"] == 1
        updated = {(u["Entity"], u["Id"]): u["Fields"] for u in plan["Updated"]}
        assert updated[("User", ann)] == ["DisplayName"]
        assert "State" in updated[("User", ben)]
        assert "would be updated User " + ann in r.stdout, r.stdout
        assert "User: 0 would be created, 2 would be updated" in r.stdout, r.stdout
        assert [(g["Entity"], g["Id"]) for g in plan["DeletedAtSource"]] == [("MailDomain", extra)]
        assert dump(db, *keys) == before

        r, applied = run()
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert applied["Counts"]["User"]["Updated"] == 2
        assert [(g["Entity"], g["Id"]) for g in applied["DeletedAtSource"]] == [("MailDomain", extra)]
        users = {u["UserId"]: u for o in dump(db, *keys)["Organizations"] for u in o["Users"]}
        assert users[ann]["DisplayName"] == "Ann at the source"
        assert users[ben]["State"] == "DISABLED" and not users[ben].get("Email")
        target = ServerProcess(tmp_path / "t", db_url=db, extra_args=keys, name="updates-target").start()
        t = make_client(target.url, account=acc)
        got = snapshot(t)
        want = snapshot(c)
        # The deregistered domain stays in the target (reported, never deleted); everything else answers the same.
        got_domains = got[org.org_id + "/mail"].pop("domains")
        want_domains = want[org.org_id + "/mail"].pop("domains")
        got[org.org_id + "/mail"].pop(extra)
        assert [d for p in got_domains for d in p if d["DomainName"] != extra] == [d for p in want_domains for d in p]
        assert got == want

        r, again = run()
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert "nothing changed" in r.stdout, r.stdout
        assert all(v["Created"] == 0 and v["Updated"] == 0 for v in again["Counts"].values())
        assert again["Updated"] == []

        # cat is edited in the target, then changed at the source: a conflict, skipped; the local edit stays.
        t.update_user(OrganizationId=org.org_id, UserId=cat, JobTitle="Edited here")
        target.stop()
        target = None
        c.update_user(OrganizationId=org.org_id, UserId=cat, DisplayName="Cat at the source")
        r, conflict = run()
        assert r.returncode == 2, f"{r.stdout}\n{r.stderr}"
        assert [(s["Entity"], s["Id"]) for s in conflict["Skipped"]] == [("User", cat)]
        assert "changed in the target since it was imported" in conflict["Skipped"][0]["Reason"]
        assert conflict["Counts"]["User"]["Updated"] == 0
        users = {u["UserId"]: u for o in dump(db, *keys)["Organizations"] for u in o["Users"]}
        assert users[cat]["JobTitle"] == "Edited here"
        assert users[cat]["DisplayName"] == "cat display"
    finally:
        if target:
            target.stop()
        src.stop()


def test_aliases_removed_at_the_source_are_reported_and_kept(tmp_path):
    """An alias an earlier import brought that the source no longer lists is reported as deleted at the source (in
    the dry run and the real run) and kept; an alias added in the target is not the source's business."""
    db = f"sqlite:{tmp_path / 'target.db'}"
    src = ServerProcess(tmp_path / "src", name="aliases-source").start()
    try:
        acc = "979797979797"
        c = make_client(src.url, account=acc)
        org = make_org(c, src.url, acc)
        ann = add_user(org, "ann", password=None)
        kept, removed = f"annie@{org.domain}", f"anna@{org.domain}"
        for a in (kept, removed):
            c.create_alias(OrganizationId=org.org_id, EntityId=ann, Alias=a)
        env = import_env(acc, "dummy-secret-key")

        def run(*extra_args):
            return import_with_report(tmp_path, src.url, db, env, *extra_args)

        r, first = run()
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert first["Counts"]["Alias"]["Created"] == 2
        assert first["DeletedAtSource"] == []
        c.delete_alias(OrganizationId=org.org_id, EntityId=ann, Alias=removed)
        target = ServerProcess(tmp_path / "t", db_url=db, name="aliases-target").start()
        try:
            local = f"ann.local@{org.domain}"
            make_client(target.url, account=acc).create_alias(OrganizationId=org.org_id, EntityId=ann, Alias=local)
        finally:
            target.stop()

        for args in (["--dry-run"], []):
            r, report = run(*args)
            assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
            assert [(g["Entity"], g["Id"]) for g in report["DeletedAtSource"]] == [("Alias", removed)], report
            assert f"Alias {removed} ({removed}) is no longer at the source" in r.stdout, r.stdout
        held = {a.lower() for o in dump(db)["Organizations"] for u in o["Users"] for a in u.get("Aliases", [])}
        assert {kept, removed, local} <= held, held
    finally:
        src.stop()
