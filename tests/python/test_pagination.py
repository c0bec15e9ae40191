"""Pagination of ListPersonalAccessTokens, ListUsers and ListOrganizations (issue 2 §4, D4), and NextToken hostility."""

import base64
import uuid

import pytest

from conftest import expect_error, make_client, make_org, make_pat_org, new_account, signed_request

N_ALICE, N_BOB = 14, 9


@pytest.fixture(scope="module")
def big(url):
    org = make_pat_org(url, users=("alice", "bob"))
    created = []
    for i in range(max(N_ALICE, N_BOB)):
        if i < N_ALICE:
            created.append(org.users["alice"].create_pat(name=f"a{i}"))
        if i < N_BOB:
            created.append(org.users["bob"].create_pat(name=f"b{i}"))
    org.created = created
    return org


def _key(s):
    return (s["DateCreated"], s["PersonalAccessTokenId"])


def _raw_walk(url, account, operation, body, page_size, region="us-east-1", result_key="PersonalAccessTokenSummaries"):
    """Walk with raw signed requests; checks: no empty page while a NextToken is given, last page has no key."""
    pages = []
    token = None
    for _ in range(1000):
        req = dict(body, MaxResults=page_size)
        if token is not None:
            req["NextToken"] = token
        r = signed_request(url, operation, req, account=account, region=region)
        assert r.status == 200, r
        doc = r.json()
        items = doc[result_key]
        assert len(items) <= page_size
        if "NextToken" in doc:
            assert isinstance(doc["NextToken"], str) and doc["NextToken"], doc
            assert items, f"empty page with a NextToken: {doc}"
        pages.append(items)
        token = doc.get("NextToken")
        if token is None:
            assert doc.get("NextToken", "absent") == "absent"
            return pages
    raise AssertionError("walk did not end")


def test_full_order(big):
    out = big.client.list_personal_access_tokens(OrganizationId=big.org_id)
    items = out["PersonalAccessTokenSummaries"]
    assert "NextToken" not in out
    assert [s["PersonalAccessTokenId"] for s in items] == [t["PersonalAccessTokenId"] for t in big.created]
    assert items == sorted(items, key=_key)


@pytest.mark.parametrize("page_size", [1, 2, 5, 22, 23, 24, 100])
def test_raw_walk_pat(url, big, page_size):
    pages = _raw_walk(url, big.account, "ListPersonalAccessTokens", {"OrganizationId": big.org_id}, page_size)
    ids = [s["PersonalAccessTokenId"] for p in pages for s in p]
    assert ids == [t["PersonalAccessTokenId"] for t in big.created]
    total = len(big.created)
    assert len(pages) == max(1, -(-total // page_size))  # last page exactly full means no extra empty page
    for p in pages[:-1]:
        assert len(p) == page_size


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_raw_walk_pat_by_user(url, big, user):
    u = big.users[user]
    pages = _raw_walk(
        url, big.account, "ListPersonalAccessTokens", {"OrganizationId": big.org_id, "UserId": u.email}, 4
    )
    ids = [s["PersonalAccessTokenId"] for p in pages for s in p]
    expected = [t["PersonalAccessTokenId"] for t in big.created if t["Name"].startswith(user[0])]
    assert ids == expected


def test_boto3_paginator_page_size(big):
    pag = big.client.get_paginator("list_personal_access_tokens")
    pages = list(pag.paginate(OrganizationId=big.org_id, PaginationConfig={"PageSize": 4}))
    assert [len(p["PersonalAccessTokenSummaries"]) for p in pages] == [4, 4, 4, 4, 4, 3]
    ids = [s["PersonalAccessTokenId"] for p in pages for s in p["PersonalAccessTokenSummaries"]]
    assert ids == [t["PersonalAccessTokenId"] for t in big.created]
    assert "NextToken" not in pages[-1]
    items = [s for p in pages for s in p["PersonalAccessTokenSummaries"]]
    assert items == sorted(items, key=_key)


@pytest.mark.parametrize("max_items,page_size", [(7, 3), (5, 5), (10, 4), (1, 100)])
def test_boto3_paginator_max_items_and_resume(big, max_items, page_size):
    pag = big.client.get_paginator("list_personal_access_tokens")
    expected = [t["PersonalAccessTokenId"] for t in big.created]
    seen = []
    start = None
    for _ in range(100):
        cfg = {"MaxItems": max_items, "PageSize": page_size}
        if start:
            cfg["StartingToken"] = start
        res = pag.paginate(OrganizationId=big.org_id, PaginationConfig=cfg).build_full_result()
        chunk = [s["PersonalAccessTokenId"] for s in res["PersonalAccessTokenSummaries"]]
        assert len(chunk) <= max_items
        seen += chunk
        start = res.get("NextToken")
        if not start:
            break
    assert seen == expected


def test_boto3_paginator_with_user_filter(big):
    pag = big.client.get_paginator("list_personal_access_tokens")
    bob = big.users["bob"]
    res = pag.paginate(
        OrganizationId=big.org_id, UserId=bob.name, PaginationConfig={"PageSize": 2, "MaxItems": 5}
    ).build_full_result()
    first = [s["PersonalAccessTokenId"] for s in res["PersonalAccessTokenSummaries"]]
    assert len(first) == 5 and res.get("NextToken")
    rest = pag.paginate(
        OrganizationId=big.org_id, UserId=bob.name, PaginationConfig={"PageSize": 3, "StartingToken": res["NextToken"]}
    ).build_full_result()
    ids = first + [s["PersonalAccessTokenId"] for s in rest["PersonalAccessTokenSummaries"]]
    assert ids == [t["PersonalAccessTokenId"] for t in big.created if t["Name"].startswith("b")]


def test_walk_with_concurrent_creates_and_deletes(url):
    org = make_pat_org(url, users=("carl",))
    carl = org.users["carl"]
    c = org.client
    initial = [carl.create_pat(name=f"w{i}")["PersonalAccessTokenId"] for i in range(18)]
    # Tokens deleted during the walk: some ahead of the cursor, some behind it.
    to_delete = [initial[1], initial[10], initial[17], initial[5]]
    survivors = [i for i in initial if i not in to_delete]
    created_during = []
    seen = []
    token = None
    step = 0
    while True:
        kw = {"OrganizationId": org.org_id, "MaxResults": 3}
        if token:
            kw["NextToken"] = token
        out = c.list_personal_access_tokens(**kw)
        page = [s["PersonalAccessTokenId"] for s in out["PersonalAccessTokenSummaries"]]
        if out.get("NextToken"):
            assert page, "empty page with a NextToken"
        seen += page
        # mutate between pages
        if step < len(to_delete):
            c.delete_personal_access_token(OrganizationId=org.org_id, PersonalAccessTokenId=to_delete[step])
            created_during.append(carl.create_pat(name=f"new{step}")["PersonalAccessTokenId"])
        step += 1
        token = out.get("NextToken")
        if not token:
            break
        assert step < 100
    assert len(seen) == len(set(seen)), f"duplicates: {seen}"
    for s in survivors:
        assert seen.count(s) == 1, s
    assert set(seen) <= set(initial) | set(created_during)
    # Order is preserved among what was seen.
    assert [i for i in seen if i in survivors] == survivors


def test_list_users_pagination_and_default_page(url):
    acct = new_account()
    c = make_client(url, account=acct)
    org = make_org(c, url, acct)
    ids = [c.create_user(OrganizationId=org.org_id, Name=f"u{i:03d}", DisplayName="U")["UserId"] for i in range(101)]
    # Default MaxResults 100.
    first = c.list_users(OrganizationId=org.org_id)
    assert len(first["Users"]) == 100 and first.get("NextToken")
    second = c.list_users(OrganizationId=org.org_id, NextToken=first["NextToken"])
    assert len(second["Users"]) == 1 and "NextToken" not in second
    assert [u["Id"] for u in first["Users"] + second["Users"]] == ids
    # Paginator.
    pag = c.get_paginator("list_users")
    got = [u["Id"] for p in pag.paginate(OrganizationId=org.org_id, PaginationConfig={"PageSize": 7}) for u in p["Users"]]
    assert got == ids
    res = pag.paginate(OrganizationId=org.org_id, PaginationConfig={"PageSize": 9, "MaxItems": 20}).build_full_result()
    assert [u["Id"] for u in res["Users"]] == ids[:20]
    rest = pag.paginate(OrganizationId=org.org_id, PaginationConfig={"PageSize": 50, "StartingToken": res["NextToken"]})
    assert [u["Id"] for p in rest for u in p["Users"]] == ids[20:]
    # With a filter.
    pages = _raw_walk(
        url, acct, "ListUsers", {"OrganizationId": org.org_id, "Filters": {"UsernamePrefix": "u01"}}, 3, result_key="Users"
    )
    assert [u["Name"] for p in pages for u in p] == [f"u{i:03d}" for i in range(10, 20)]


def test_list_organizations_pagination(url):
    acct = new_account()
    c = make_client(url, account=acct)
    ids = [c.create_organization(Alias=f"pg{uuid.uuid4().hex[:12]}")["OrganizationId"] for _ in range(7)]
    c.delete_organization(OrganizationId=ids[2], DeleteDirectory=False)  # Deleted orgs are still listed
    pag = c.get_paginator("list_organizations")
    got = [o["OrganizationId"] for p in pag.paginate(PaginationConfig={"PageSize": 2}) for o in p["OrganizationSummaries"]]
    assert got == ids
    res = pag.paginate(PaginationConfig={"PageSize": 2, "MaxItems": 3}).build_full_result()
    assert [o["OrganizationId"] for o in res["OrganizationSummaries"]] == ids[:3]
    rest = pag.paginate(PaginationConfig={"StartingToken": res["NextToken"], "PageSize": 3}).build_full_result()
    assert [o["OrganizationId"] for o in rest["OrganizationSummaries"]] == ids[3:]
    pages = _raw_walk(url, acct, "ListOrganizations", {}, 7, result_key="OrganizationSummaries")
    assert len(pages) == 1
    pages = _raw_walk(url, acct, "ListOrganizations", {}, 1, result_key="OrganizationSummaries")
    assert len(pages) == 7


# ---------------------------------------------------------------------------------------------------------------
# NextToken hostility
# ---------------------------------------------------------------------------------------------------------------
def _first_token(url, account, operation, body, region="us-east-1"):
    r = signed_request(url, operation, dict(body, MaxResults=1), account=account, region=region)
    assert r.status == 200, r
    tok = r.json().get("NextToken")
    assert tok, r
    return tok


def _flip_variants(tok: str):
    """Tokens that differ from `tok` in one place (never the last character, whose low bits may be padding)."""
    out = set()
    n = len(tok)
    for pos in sorted({0, 1, n // 4, n // 2, (3 * n) // 4, n - 2}):
        if 0 <= pos < n - 1:
            ch = tok[pos]
            for repl in ("A", "B"):
                if repl != ch:
                    out.add(tok[:pos] + repl + tok[pos + 1 :])
                    break
    # A real bit flip in the decoded bytes, when the token is base64/base64url.
    for dec, enc in ((base64.urlsafe_b64decode, base64.urlsafe_b64encode), (base64.b64decode, base64.b64encode)):
        try:
            raw = bytearray(dec(tok + "=" * (-len(tok) % 4)))
        except Exception:  # noqa: BLE001
            continue
        if len(raw) > 2:
            for i in (0, len(raw) // 2, len(raw) - 1):
                b = bytearray(raw)
                b[i] ^= 0x01
                s = enc(bytes(b)).decode()
                if not tok.endswith("="):
                    s = s.rstrip("=")
                out.add(s)
        break
    out.discard(tok)
    return sorted(out)


def test_next_token_hostility(url):
    acct = new_account()
    org = make_pat_org(url, account=acct, users=("alice", "bob"))
    for u in ("alice", "bob"):
        for i in range(3):
            org.users[u].create_pat(name=f"{u}{i}")
    org2 = make_pat_org(url, account=acct, users=("alice",))
    for i in range(3):
        org2.users["alice"].create_pat(name=f"o2-{i}")
    c = org.client
    for i in range(3):
        c.create_user(OrganizationId=org.org_id, Name=f"plain{i}", DisplayName="P")
    oid = org.org_id

    pat_all = _first_token(url, acct, "ListPersonalAccessTokens", {"OrganizationId": oid})
    pat_alice = _first_token(url, acct, "ListPersonalAccessTokens", {"OrganizationId": oid, "UserId": "alice"})
    pat_org2 = _first_token(url, acct, "ListPersonalAccessTokens", {"OrganizationId": org2.org_id})
    users_tok = _first_token(url, acct, "ListUsers", {"OrganizationId": oid})
    # Another account with its own org in the same state.
    acct_b = new_account()
    org_b = make_org(make_client(url, account=acct_b), url, acct_b)
    # Orgs listing tokens for the account/region checks.
    for _ in range(2):
        make_client(url, account=acct, region="eu-west-1").create_organization(Alias=f"r{uuid.uuid4().hex[:10]}")
    orgs_euw = _first_token(url, acct, "ListOrganizations", {}, region="eu-west-1")
    orgs_use = _first_token(url, acct, "ListOrganizations", {})

    # The good tokens work where they belong.
    for op, body, tok in [
        ("ListPersonalAccessTokens", {"OrganizationId": oid}, pat_all),
        ("ListPersonalAccessTokens", {"OrganizationId": oid, "UserId": "alice"}, pat_alice),
        # the filter binding is on the resolved user: the same user by email continues the walk
        ("ListPersonalAccessTokens", {"OrganizationId": oid, "UserId": org.users["alice"].email}, pat_alice),
        ("ListPersonalAccessTokens", {"OrganizationId": oid, "UserId": org.users["alice"].user_id}, pat_alice),
        ("ListUsers", {"OrganizationId": oid}, users_tok),
    ]:
        r = signed_request(url, op, dict(body, NextToken=tok), account=acct)
        assert r.status == 200, (op, r)
    r = signed_request(url, "ListOrganizations", {"NextToken": orgs_euw}, account=acct, region="eu-west-1")
    assert r.status == 200, r

    bad = []  # (label, account, region, operation, body)
    lpat = "ListPersonalAccessTokens"
    bad.append(("garbage", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": "garbage"}))
    bad.append(("garbage-b64", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": base64.b64encode(b"x" * 60).decode()}))
    bad.append(("long", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": "A" * 1024}))
    bad.append(("other-org", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": pat_org2}))
    bad.append(("user-filter-added", acct, "us-east-1", lpat, {"OrganizationId": oid, "UserId": "bob", "NextToken": pat_all}))
    bad.append(("user-filter-changed", acct, "us-east-1", lpat, {"OrganizationId": oid, "UserId": "bob", "NextToken": pat_alice}))
    bad.append(("user-filter-dropped", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": pat_alice}))
    bad.append(("other-operation", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": users_tok}))
    bad.append(("other-operation-2", acct, "us-east-1", "ListUsers", {"OrganizationId": oid, "NextToken": pat_all}))
    bad.append(("other-account", acct_b, "us-east-1", lpat, {"OrganizationId": org_b.org_id, "NextToken": pat_all}))
    bad.append(("other-account-orgs", acct_b, "eu-west-1", "ListOrganizations", {"NextToken": orgs_euw}))
    bad.append(("other-region-orgs", acct, "us-east-1", "ListOrganizations", {"NextToken": orgs_euw}))
    bad.append(("other-region-orgs-2", acct, "eu-west-1", "ListOrganizations", {"NextToken": orgs_use}))
    bad.append(("orgs-token-on-pats", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": orgs_use}))
    for i, v in enumerate(_flip_variants(pat_all)):
        bad.append((f"flip{i}", acct, "us-east-1", lpat, {"OrganizationId": oid, "NextToken": v}))
    assert sum(1 for b in bad if b[0].startswith("flip")) >= 4

    messages = set()
    problems = []
    for label, account, region, op, body in bad:
        r = signed_request(url, op, body, account=account, region=region)
        if r.status != 400 or r.error_type != "InvalidParameterException":
            problems.append(f"{label}: {r!r}")
            continue
        messages.add(r.json().get("Message"))
    assert not problems, "\n".join(problems)
    assert len(messages) == 1, f"NextToken errors differ: {messages}"


def test_empty_next_token(url, big):
    """NextToken "" is an InvalidParameterException; D4 says every bad token gets the one fixed message."""
    body = {"OrganizationId": big.org_id}
    empty = signed_request(url, "ListPersonalAccessTokens", dict(body, NextToken=""), account=big.account)
    garbage = signed_request(url, "ListPersonalAccessTokens", dict(body, NextToken="garbage"), account=big.account)
    for r in (empty, garbage):
        assert r.status == 400 and r.error_type == "InvalidParameterException", r
    assert empty.json()["Message"] == garbage.json()["Message"], (empty.json(), garbage.json())


def test_next_token_does_not_reveal_org_or_user(url, big):
    tok = _first_token(url, big.account, "ListPersonalAccessTokens", {"OrganizationId": big.org_id, "UserId": "alice"})
    blobs = [tok.encode()]
    for dec in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            blobs.append(dec(tok + "=" * (-len(tok) % 4)))
        except Exception:  # noqa: BLE001
            pass
    secrets_ = [big.org_id, big.org_id[2:], big.users["alice"].user_id, big.created[0]["PersonalAccessTokenId"], "alice"]
    for b in blobs:
        for s in secrets_:
            assert s.encode() not in b, f"NextToken reveals {s!r}"


@pytest.mark.parametrize("op,body", [
    ("ListPersonalAccessTokens", {}),
    ("ListUsers", {}),
    ("ListOrganizations", None),
])
def test_max_results_bounds(url, big, op, body):
    base = {} if body is None else {"OrganizationId": big.org_id}
    for bad in (0, 101, -1):
        r = signed_request(url, op, dict(base, MaxResults=bad), account=big.account)
        assert r.status == 400 and r.error_type == "InvalidParameterException", (op, bad, r)
        assert "MaxResults" in r.json()["Message"], r
    for ok in (1, 100):
        r = signed_request(url, op, dict(base, MaxResults=ok), account=big.account)
        assert r.status == 200, (op, ok, r)


def test_max_results_101_boto3(big):
    c = big.client
    expect_error(c.exceptions.InvalidParameterException, c.list_users, OrganizationId=big.org_id, MaxResults=101)
    expect_error(c.exceptions.InvalidParameterException, c.list_organizations, MaxResults=101)


def test_list_users_token_bound_to_filter(url):
    acct = new_account()
    c = make_client(url, account=acct)
    org = make_org(c, url, acct)
    for i in range(6):
        c.create_user(OrganizationId=org.org_id, Name=f"f{i}", DisplayName=f"D{i}")
    tok = _first_token(url, acct, "ListUsers", {"OrganizationId": org.org_id, "Filters": {"UsernamePrefix": "f"}})
    ok = signed_request(
        url, "ListUsers", {"OrganizationId": org.org_id, "Filters": {"UsernamePrefix": "f"}, "NextToken": tok}, account=acct
    )
    assert ok.status == 200 and len(ok.json()["Users"]) == 5, ok
    for filters in ({}, {"UsernamePrefix": "f1"}, {"DisplayNamePrefix": "D"}, {"State": "DISABLED"}):
        body = {"OrganizationId": org.org_id, "NextToken": tok}
        if filters:
            body["Filters"] = filters
        r = signed_request(url, "ListUsers", body, account=acct)
        assert r.status == 400 and r.error_type == "InvalidParameterException", (filters, r)
