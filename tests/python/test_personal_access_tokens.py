"""ListPersonalAccessTokens, GetPersonalAccessTokenMetadata, DeletePersonalAccessToken (spec §7.16-7.18, D6, D7, D9)."""

import datetime as dt
import uuid

import pytest

from conftest import (
    PAT_ID_RE,
    assert_epoch_ms,
    expect_error,
    make_pat_org,
    signed_request,
    verify,
)

SUMMARY_KEYS = {"PersonalAccessTokenId", "UserId", "Name", "DateCreated", "DateLastUsed", "ExpiresTime", "Scopes"}


@pytest.fixture(scope="module")
def patorg(url):
    org = make_pat_org(url, users=("alice", "bob"), lifetime=30)
    org.tokens = {
        "alice": [org.users["alice"].create_pat(name=f"alice-{i}") for i in range(3)],
        "bob": [org.users["bob"].create_pat(name="bob-0", scopes=["IMAP"])],
    }
    return org


def _ids(resp):
    return [s["PersonalAccessTokenId"] for s in resp["PersonalAccessTokenSummaries"]]


def test_list_all_tokens_of_org(patorg):
    c = patorg.client
    out = c.list_personal_access_tokens(OrganizationId=patorg.org_id)
    assert "NextToken" not in out
    created = patorg.tokens["alice"] + patorg.tokens["bob"]
    assert _ids(out) == [t["PersonalAccessTokenId"] for t in created]
    for s, t in zip(out["PersonalAccessTokenSummaries"], created):
        assert set(s) <= SUMMARY_KEYS
        assert PAT_ID_RE.match(s["PersonalAccessTokenId"])
        assert s["Name"] == t["Name"]
        assert isinstance(s["DateCreated"], dt.datetime) and isinstance(s["ExpiresTime"], dt.datetime)
        assert abs((s["ExpiresTime"] - s["DateCreated"]) - dt.timedelta(days=30)) < dt.timedelta(milliseconds=1)
        assert "Token" not in s
    by_id = {s["PersonalAccessTokenId"]: s for s in out["PersonalAccessTokenSummaries"]}
    assert by_id[patorg.tokens["bob"][0]["PersonalAccessTokenId"]]["Scopes"] == ["IMAP"]
    assert by_id[patorg.tokens["alice"][0]["PersonalAccessTokenId"]]["Scopes"] == ["IMAP", "SMTP"]
    assert by_id[patorg.tokens["alice"][0]["PersonalAccessTokenId"]]["UserId"] == patorg.users["alice"].user_id


@pytest.mark.parametrize("form", ["id", "name", "email"])
def test_list_by_user_identifier(patorg, form):
    alice = patorg.users["alice"]
    ident = {"id": alice.user_id, "name": alice.name, "email": alice.email}[form]
    out = patorg.client.list_personal_access_tokens(OrganizationId=patorg.org_id, UserId=ident)
    assert _ids(out) == [t["PersonalAccessTokenId"] for t in patorg.tokens["alice"]]
    assert {s["UserId"] for s in out["PersonalAccessTokenSummaries"]} == {alice.user_id}


def test_list_unknown_user(patorg):
    c = patorg.client
    for ident in ("ghost", str(uuid.uuid4())):
        expect_error(
            c.exceptions.EntityNotFoundException,
            c.list_personal_access_tokens,
            OrganizationId=patorg.org_id,
            UserId=ident,
        )


def test_list_unknown_org(patorg):
    c = patorg.client
    expect_error(
        c.exceptions.OrganizationNotFoundException,
        c.list_personal_access_tokens,
        OrganizationId="m-" + uuid.uuid4().hex,
    )


def test_list_user_with_no_tokens(patorg):
    c = patorg.client
    uid = c.create_user(OrganizationId=patorg.org_id, Name="notokens", DisplayName="N")["UserId"]
    out = c.list_personal_access_tokens(OrganizationId=patorg.org_id, UserId=uid)
    assert out["PersonalAccessTokenSummaries"] == []
    assert "NextToken" not in out


def test_get_metadata(patorg):
    c = patorg.client
    t = patorg.tokens["alice"][1]
    m = c.get_personal_access_token_metadata(
        OrganizationId=patorg.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"]
    )
    assert m["PersonalAccessTokenId"] == t["PersonalAccessTokenId"]
    assert m["UserId"] == patorg.users["alice"].user_id
    assert m["Name"] == "alice-1"
    assert m["Scopes"] == ["IMAP", "SMTP"]
    assert round(m["DateCreated"].timestamp() * 1000) == round(t["DateCreated"] * 1000)
    assert round(m["ExpiresTime"].timestamp() * 1000) == round(t["ExpiresTime"] * 1000)
    assert "Token" not in m


def test_get_metadata_unknown(patorg):
    c = patorg.client
    expect_error(
        c.exceptions.ResourceNotFoundException,
        c.get_personal_access_token_metadata,
        OrganizationId=patorg.org_id,
        PersonalAccessTokenId="doesnotexist123",
    )


def test_get_metadata_of_other_org_token(url, patorg):
    other = make_pat_org(url, account=patorg.account, users=())
    c = patorg.client
    expect_error(
        c.exceptions.ResourceNotFoundException,
        c.get_personal_access_token_metadata,
        OrganizationId=other.org_id,
        PersonalAccessTokenId=patorg.tokens["alice"][0]["PersonalAccessTokenId"],
    )
    # and deleting it through the other org does not touch it
    c.delete_personal_access_token(
        OrganizationId=other.org_id, PersonalAccessTokenId=patorg.tokens["alice"][0]["PersonalAccessTokenId"]
    )
    c.get_personal_access_token_metadata(
        OrganizationId=patorg.org_id, PersonalAccessTokenId=patorg.tokens["alice"][0]["PersonalAccessTokenId"]
    )


def test_get_metadata_bad_id_pattern(patorg):
    c = patorg.client
    expect_error(
        c.exceptions.InvalidParameterException,
        c.get_personal_access_token_metadata,
        OrganizationId=patorg.org_id,
        PersonalAccessTokenId="bad id!",
    )


def test_delete_token(url, patorg):
    c = patorg.client
    alice = patorg.users["alice"]
    t = alice.create_pat(name="to-delete")
    assert alice.verify(t["Token"]).status == 200
    c.delete_personal_access_token(OrganizationId=patorg.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    expect_error(
        c.exceptions.ResourceNotFoundException,
        c.get_personal_access_token_metadata,
        OrganizationId=patorg.org_id,
        PersonalAccessTokenId=t["PersonalAccessTokenId"],
    )
    assert t["PersonalAccessTokenId"] not in _ids(c.list_personal_access_tokens(OrganizationId=patorg.org_id))
    assert alice.verify(t["Token"]).status == 401
    # Deleting again / unknown: 200.
    c.delete_personal_access_token(OrganizationId=patorg.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    c.delete_personal_access_token(OrganizationId=patorg.org_id, PersonalAccessTokenId="neverexisted")


def test_date_last_used_and_wire_format(url, patorg):
    c = patorg.client
    bob = patorg.users["bob"]
    t = bob.create_pat(name="usage")
    pid = t["PersonalAccessTokenId"]
    raw = signed_request(
        url,
        "GetPersonalAccessTokenMetadata",
        {"OrganizationId": patorg.org_id, "PersonalAccessTokenId": pid},
        account=patorg.account,
    )
    assert raw.status == 200, raw
    doc = raw.json()
    assert "DateLastUsed" not in doc, doc
    assert "null" not in raw.body.decode()
    assert_epoch_ms(doc["DateCreated"], "DateCreated")
    assert_epoch_ms(doc["ExpiresTime"], "ExpiresTime")
    assert abs(doc["ExpiresTime"] - doc["DateCreated"] - 30 * 86400) < 1e-6

    before = dt.datetime.now(dt.timezone.utc)
    assert bob.verify(t["Token"]).status == 200
    m = c.get_personal_access_token_metadata(OrganizationId=patorg.org_id, PersonalAccessTokenId=pid)
    assert isinstance(m["DateLastUsed"], dt.datetime)
    assert before - dt.timedelta(seconds=5) <= m["DateLastUsed"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(
        seconds=5
    )
    raw = signed_request(
        url,
        "ListPersonalAccessTokens",
        {"OrganizationId": patorg.org_id, "UserId": bob.user_id},
        account=patorg.account,
    )
    s = [x for x in raw.json()["PersonalAccessTokenSummaries"] if x["PersonalAccessTokenId"] == pid][0]
    assert_epoch_ms(s["DateLastUsed"], "DateLastUsed")


def test_expires_time_uses_lifetime_at_creation(url):
    org = make_pat_org(url, users=("carl",), lifetime=7)
    carl = org.users["carl"]
    t1 = carl.create_pat(name="seven")
    assert abs(t1["ExpiresTime"] - t1["DateCreated"] - 7 * 86400) < 1e-6
    org.put_pat_config(status="ACTIVE", lifetime=None)  # 365 default
    t2 = carl.create_pat(name="default")
    assert abs(t2["ExpiresTime"] - t2["DateCreated"] - 365 * 86400) < 1e-6
    m1 = org.client.get_personal_access_token_metadata(
        OrganizationId=org.org_id, PersonalAccessTokenId=t1["PersonalAccessTokenId"]
    )
    assert abs((m1["ExpiresTime"] - m1["DateCreated"]) - dt.timedelta(days=7)) < dt.timedelta(milliseconds=1)


def test_inactive_configuration_does_not_affect_admin_api(url):
    org = make_pat_org(url, users=("dora",))
    t = org.users["dora"].create_pat()
    org.put_pat_config(status="INACTIVE")
    c = org.client
    assert _ids(c.list_personal_access_tokens(OrganizationId=org.org_id)) == [t["PersonalAccessTokenId"]]
    c.get_personal_access_token_metadata(OrganizationId=org.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    # Even with the configuration removed entirely.
    c.delete_identity_provider_configuration(OrganizationId=org.org_id)
    assert _ids(c.list_personal_access_tokens(OrganizationId=org.org_id)) == [t["PersonalAccessTokenId"]]
    c.delete_personal_access_token(OrganizationId=org.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    assert _ids(c.list_personal_access_tokens(OrganizationId=org.org_id)) == []


def test_deleted_user_tokens(url):
    org = make_pat_org(url, users=("eve",))
    eve = org.users["eve"]
    t = eve.create_pat()
    c = org.client
    c.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=eve.user_id)
    # A DISABLED user can't use its token.
    assert eve.verify(t["Token"]).status == 401
    # ...but the admin can still list it.
    assert _ids(c.list_personal_access_tokens(OrganizationId=org.org_id, UserId=eve.user_id)) == [
        t["PersonalAccessTokenId"]
    ]
    c.delete_user(OrganizationId=org.org_id, UserId=eve.user_id)
    for ident in (eve.user_id, eve.name):
        expect_error(
            c.exceptions.EntityStateException,
            c.list_personal_access_tokens,
            OrganizationId=org.org_id,
            UserId=ident,
        )


def test_other_orgs_tokens_not_listed(url, patorg):
    other = make_pat_org(url, account=patorg.account, users=("alice",))
    t = other.users["alice"].create_pat()
    mine = _ids(patorg.client.list_personal_access_tokens(OrganizationId=patorg.org_id))
    theirs = _ids(patorg.client.list_personal_access_tokens(OrganizationId=other.org_id))
    assert t["PersonalAccessTokenId"] not in mine
    assert theirs == [t["PersonalAccessTokenId"]]
    # Same username in two orgs: verify is scoped by org.
    assert verify(url, other.org_id, "alice", t["Token"]).status == 200
    assert verify(url, patorg.org_id, "alice", t["Token"]).status == 401


@pytest.mark.parametrize("bad", [0, 101])
def test_max_results_out_of_range(url, patorg, bad):
    r = signed_request(
        url,
        "ListPersonalAccessTokens",
        {"OrganizationId": patorg.org_id, "MaxResults": bad},
        account=patorg.account,
    )
    assert r.status == 400 and r.error_type == "InvalidParameterException", r
    assert "MaxResults" in r.json()["Message"]


def test_max_results_101_via_boto3(patorg):
    c = patorg.client
    expect_error(
        c.exceptions.InvalidParameterException,
        c.list_personal_access_tokens,
        OrganizationId=patorg.org_id,
        MaxResults=101,
    )
