"""The AWS CLI against the server, and the server's own `workmail-pat token create` command."""

import json

import pytest

from conftest import make_pat_org, run_aws, run_bin, unique_alias, verify


@pytest.fixture(scope="module")
def cliorg(url):
    org = make_pat_org(url, users=("alice", "bob"))
    org.created = []
    for i in range(6):
        org.created.append(org.users["alice"].create_pat(name=f"a{i}"))
        org.created.append(org.users["bob"].create_pat(name=f"b{i}"))
    return org


def _ids(doc):
    return [s["PersonalAccessTokenId"] for s in doc["PersonalAccessTokenSummaries"]]


def test_cli_create_and_describe_org(url, acct):
    alias = unique_alias()
    r = run_aws(url, ["create-organization", "--alias", alias], account=acct)
    assert r.returncode == 0, r.stderr
    oid = r.json()["OrganizationId"]
    r = run_aws(url, ["describe-organization", "--organization-id", oid], account=acct)
    assert r.returncode == 0, r.stderr
    doc = r.json()
    assert doc["Alias"] == alias and doc["State"] == "Active"
    assert doc["ARN"].endswith(f":{acct}:organization/{oid}")


def test_cli_modelled_error(url, acct):
    r = run_aws(url, ["describe-organization", "--organization-id", "m-" + "0" * 32], account=acct)
    assert r.returncode != 0
    assert "OrganizationNotFoundException" in r.stderr, r.stderr


def test_cli_max_items_page_size_starting_token(url, cliorg):
    expected = [t["PersonalAccessTokenId"] for t in cliorg.created]
    base = ["list-personal-access-tokens", "--organization-id", cliorg.org_id]
    r = run_aws(url, base + ["--max-items", "5", "--page-size", "2"], account=cliorg.account)
    assert r.returncode == 0, r.stderr
    first = r.json()
    assert _ids(first) == expected[:5]
    assert first.get("NextToken"), first
    r = run_aws(url, base + ["--starting-token", first["NextToken"], "--page-size", "3"], account=cliorg.account)
    assert r.returncode == 0, r.stderr
    rest = r.json()
    assert _ids(rest) == expected[5:]
    assert "NextToken" not in rest


def test_cli_full_walk_with_user_filter(url, cliorg):
    bob = cliorg.users["bob"]
    r = run_aws(
        url,
        ["list-personal-access-tokens", "--organization-id", cliorg.org_id, "--user-id", bob.email, "--page-size", "1"],
        account=cliorg.account,
    )
    assert r.returncode == 0, r.stderr
    assert _ids(r.json()) == [t["PersonalAccessTokenId"] for t in cliorg.created if t["Name"].startswith("b")]


def test_cli_no_paginate(url, cliorg):
    r = run_aws(
        url,
        ["list-personal-access-tokens", "--organization-id", cliorg.org_id, "--no-paginate", "--max-results", "4"],
        account=cliorg.account,
    )
    assert r.returncode == 0, r.stderr
    doc = r.json()
    assert _ids(doc) == [t["PersonalAccessTokenId"] for t in cliorg.created[:4]]
    assert doc.get("NextToken")  # the server's raw token, passed through


def test_cli_list_users_and_get_metadata(url, cliorg):
    r = run_aws(url, ["list-users", "--organization-id", cliorg.org_id, "--max-items", "1"], account=cliorg.account)
    assert r.returncode == 0, r.stderr
    assert [u["Name"] for u in r.json()["Users"]] == ["alice"]
    pid = cliorg.created[0]["PersonalAccessTokenId"]
    r = run_aws(
        url,
        ["get-personal-access-token-metadata", "--organization-id", cliorg.org_id, "--personal-access-token-id", pid],
        account=cliorg.account,
    )
    assert r.returncode == 0, r.stderr
    doc = r.json()
    assert doc["PersonalAccessTokenId"] == pid and doc["Name"] == "a0"


def test_token_create_command(server, url):
    org = make_pat_org(url, users=("cli-user",))
    u = org.users["cli-user"]
    p = run_bin(
        [
            "token",
            "create",
            "--database",
            server.db_url,
            "--organization-id",
            org.org_id,
            "--user",
            u.email,
            "--name",
            "seeded",
            "--scope",
            "SMTP",
        ]
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert set(doc) == {"PersonalAccessTokenId", "Token", "Name", "DateCreated", "ExpiresTime", "Scopes"}
    assert doc["Name"] == "seeded" and doc["Scopes"] == ["SMTP"]
    assert doc["Token"].startswith("wmpat_")
    assert doc["Token"] not in p.stderr
    # It verifies on the running server, and shows up in the admin API.
    r = verify(url, org.org_id, "cli-user", doc["Token"], scope="SMTP")
    assert r.status == 200, r
    assert r.json()["PersonalAccessTokenId"] == doc["PersonalAccessTokenId"]
    assert verify(url, org.org_id, "cli-user", doc["Token"], scope="IMAP").status == 401
    ids = [
        s["PersonalAccessTokenId"]
        for s in org.client.list_personal_access_tokens(OrganizationId=org.org_id)["PersonalAccessTokenSummaries"]
    ]
    assert ids == [doc["PersonalAccessTokenId"]]
    # By user id with default scopes.
    p = run_bin(
        ["token", "create", "--database", server.db_url, "--organization-id", org.org_id, "--user", u.user_id, "--name", "n2"]
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Scopes"] == ["IMAP", "SMTP"]


def test_token_create_command_errors(server, url):
    org = make_pat_org(url, users=())
    p = run_bin(
        ["token", "create", "--database", server.db_url, "--organization-id", org.org_id, "--user", "nobody", "--name", "x"]
    )
    assert p.returncode != 0
    assert not p.stdout.strip().startswith("{") or "Token" not in p.stdout
