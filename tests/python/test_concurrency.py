"""Concurrent clients: races on idempotency, uniqueness and token creation must not produce duplicates or 5xx."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from conftest import make_client, make_pat_org, new_account, webapp

THREADS = 8


def _run_parallel(fn, n=THREADS):
    with ThreadPoolExecutor(max_workers=n) as ex:
        futs = [ex.submit(fn, i) for i in range(n)]
        return [f.result() for f in futs]


def _outcome(call):
    try:
        return ("ok", call())
    except ClientError as e:
        return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])


def test_parallel_create_organization_same_client_token(url):
    acct = new_account()
    clients = [make_client(url, account=acct) for _ in range(THREADS)]
    alias, token = f"race{uuid.uuid4().hex[:10]}", "race-" + uuid.uuid4().hex
    res = _run_parallel(lambda i: _outcome(lambda: clients[i].create_organization(Alias=alias, ClientToken=token)))
    ids = {r[1]["OrganizationId"] for r in res if r[0] == "ok"}
    assert len(ids) == 1 and all(r[0] == "ok" for r in res), res
    orgs = [o for o in clients[0].list_organizations()["OrganizationSummaries"] if o["Alias"] == alias]
    assert len(orgs) == 1, orgs


def test_parallel_create_organization_same_alias(url):
    acct = new_account()
    clients = [make_client(url, account=acct) for _ in range(THREADS)]
    alias = f"race{uuid.uuid4().hex[:10]}"
    res = _run_parallel(lambda i: _outcome(lambda: clients[i].create_organization(Alias=alias)))
    oks = [r for r in res if r[0] == "ok"]
    assert len(oks) == 1, res
    assert all(r == ("NameAvailabilityException", 400) for r in res if r[0] != "ok"), res


def test_parallel_create_user_same_name(url):
    acct = new_account()
    clients = [make_client(url, account=acct) for _ in range(THREADS)]
    oid = clients[0].create_organization(Alias=f"race{uuid.uuid4().hex[:10]}")["OrganizationId"]
    res = _run_parallel(
        lambda i: _outcome(lambda: clients[i].create_user(OrganizationId=oid, Name="samename", DisplayName="S"))
    )
    assert len([r for r in res if r[0] == "ok"]) == 1, res
    assert all(r == ("NameAvailabilityException", 400) for r in res if r[0] != "ok"), res
    assert [u["Name"] for u in clients[0].list_users(OrganizationId=oid)["Users"]] == ["samename"]


def test_parallel_token_creation_and_listing(url):
    org = make_pat_org(url, users=("alice", "bob"))
    users = list(org.users.values())

    def work(i):
        u = users[i % 2]
        made = []
        for j in range(6):
            r = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": f"t{i}-{j}"}, bearer=u.session)
            assert r.status == 201, r
            made.append(r.json())
        return made

    made = [t for chunk in _run_parallel(work) for t in chunk]
    assert len({t["PersonalAccessTokenId"] for t in made}) == len(made) == THREADS * 6
    assert len({t["Token"] for t in made}) == len(made)
    pag = org.client.get_paginator("list_personal_access_tokens")
    listed = [
        s
        for p in pag.paginate(OrganizationId=org.org_id, PaginationConfig={"PageSize": 7})
        for s in p["PersonalAccessTokenSummaries"]
    ]
    assert sorted(s["PersonalAccessTokenId"] for s in listed) == sorted(t["PersonalAccessTokenId"] for t in made)
    keys = [(s["DateCreated"], s["PersonalAccessTokenId"]) for s in listed]
    assert keys == sorted(keys)
    # Every one of them verifies, in parallel too.
    by_user = {u.user_id: u for u in users}
    owner = {s["PersonalAccessTokenId"]: by_user[s["UserId"]] for s in listed}

    def check(i):
        bad = []
        for t in made[i::THREADS]:
            u = owner[t["PersonalAccessTokenId"]]
            r = u.verify(t["Token"])
            if r.status != 200:
                bad.append(r)
        return bad

    assert [b for chunk in _run_parallel(check) for b in chunk] == []
