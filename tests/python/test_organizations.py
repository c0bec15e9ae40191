"""CreateOrganization, DescribeOrganization, ListOrganizations, DeleteOrganization (spec §7.1-7.4, D1-D3, D11)."""

import datetime as dt
import uuid

import pytest

from conftest import (
    ORG_ID_RE,
    REGION,
    expect_error,
    make_client,
    make_org,
    make_pat_org,
    new_account,
    signed_request,
    unique_alias,
    verify,
)


def test_create_and_describe_organization(wm, acct):
    alias = unique_alias()
    before = dt.datetime.now(dt.timezone.utc)
    out = wm.create_organization(Alias=alias)
    org_id = out["OrganizationId"]
    assert ORG_ID_RE.match(org_id), org_id
    assert out["ResponseMetadata"]["RequestId"]
    d = wm.describe_organization(OrganizationId=org_id)
    assert d["OrganizationId"] == org_id
    assert d["Alias"] == alias
    assert d["State"] == "Active"
    assert d["DefaultMailDomain"] == f"{alias}.awsapps.com"
    assert d["ARN"] == f"arn:aws:workmail:{REGION}:{acct}:organization/{org_id}"
    assert isinstance(d["CompletedDate"], dt.datetime)
    assert d["CompletedDate"].tzinfo is not None
    assert before - dt.timedelta(seconds=5) <= d["CompletedDate"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(
        seconds=5
    )
    assert "ErrorMessage" not in d


def test_non_account_key_maps_to_default_account(url):
    c = make_client(url, access_key="AKIDEXAMPLENOTDIGITS")
    org_id = c.create_organization(Alias=unique_alias())["OrganizationId"]
    arn = c.describe_organization(OrganizationId=org_id)["ARN"]
    assert arn == f"arn:aws:workmail:{REGION}:000000000000:organization/{org_id}"
    # Another non-12-digit key is the same account.
    c2 = make_client(url, access_key="SOMEOTHERKEY")
    assert c2.describe_organization(OrganizationId=org_id)["OrganizationId"] == org_id


def test_any_region_is_accepted_and_in_arn(url, acct):
    c = make_client(url, account=acct, region="eu-central-2")
    org_id = c.create_organization(Alias=unique_alias())["OrganizationId"]
    assert c.describe_organization(OrganizationId=org_id)["ARN"].startswith(f"arn:aws:workmail:eu-central-2:{acct}:")


def test_describe_unknown_org(wm):
    expect_error(
        wm.exceptions.OrganizationNotFoundException,
        wm.describe_organization,
        OrganizationId="m-" + uuid.uuid4().hex,
    )


def test_org_of_other_account_is_invisible(url, wm):
    org_id = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    other = make_client(url, account=new_account())
    expect_error(other.exceptions.OrganizationNotFoundException, other.describe_organization, OrganizationId=org_id)
    expect_error(other.exceptions.OrganizationNotFoundException, other.list_users, OrganizationId=org_id)
    expect_error(
        other.exceptions.OrganizationNotFoundException,
        other.delete_organization,
        OrganizationId=org_id,
        DeleteDirectory=False,
    )
    assert all(o["OrganizationId"] != org_id for o in other.list_organizations()["OrganizationSummaries"])
    # still there for its owner
    assert wm.describe_organization(OrganizationId=org_id)["State"] == "Active"


def test_org_of_other_region_is_invisible(url, acct, wm):
    org_id = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    other = make_client(url, account=acct, region="eu-west-1")
    expect_error(other.exceptions.OrganizationNotFoundException, other.describe_organization, OrganizationId=org_id)
    expect_error(
        other.exceptions.OrganizationNotFoundException,
        other.list_personal_access_tokens,
        OrganizationId=org_id,
    )
    assert all(o["OrganizationId"] != org_id for o in other.list_organizations()["OrganizationSummaries"])


def test_alias_reuse(url, wm, acct):
    alias = unique_alias()
    first = wm.create_organization(Alias=alias)["OrganizationId"]
    expect_error(wm.exceptions.NameAvailabilityException, wm.create_organization, Alias=alias)
    # Same alias in another account or region is fine.
    make_client(url, account=new_account()).create_organization(Alias=alias)
    make_client(url, account=acct, region="ap-south-1").create_organization(Alias=alias)
    # Once deleted, the alias can be reused in the same account+region (D1: "non-Deleted org").
    wm.delete_organization(OrganizationId=first, DeleteDirectory=False)
    second = wm.create_organization(Alias=alias)["OrganizationId"]
    assert second != first


@pytest.mark.parametrize("alias", ["d-abcdef", "-leading", "x" * 63])
def test_bad_alias(wm, alias):
    expect_error(wm.exceptions.InvalidParameterException, wm.create_organization, Alias=alias)


def test_client_token_idempotency(url, wm, acct):
    token = "ct-" + uuid.uuid4().hex
    alias = unique_alias()
    a = wm.create_organization(Alias=alias, ClientToken=token)["OrganizationId"]
    b = wm.create_organization(Alias=alias, ClientToken=token)["OrganizationId"]
    assert a == b
    # Only one org was made.
    orgs = [o for o in wm.list_organizations()["OrganizationSummaries"] if o["Alias"] == alias]
    assert [o["OrganizationId"] for o in orgs] == [a]
    # Same token, different parameters.
    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.create_organization,
        Alias=unique_alias(),
        ClientToken=token,
    )
    # The token is per account: another account with the same token and alias gets its own org.
    other = make_client(url, account=new_account())
    c = other.create_organization(Alias=alias, ClientToken=token)["OrganizationId"]
    assert c != a


def test_client_token_replay_on_delete(wm):
    org_id = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    token = "del-" + uuid.uuid4().hex
    r1 = wm.delete_organization(OrganizationId=org_id, DeleteDirectory=False, ClientToken=token)
    r2 = wm.delete_organization(OrganizationId=org_id, DeleteDirectory=False, ClientToken=token)
    assert r1["OrganizationId"] == r2["OrganizationId"] == org_id
    assert r1["State"] == "Deleting"
    assert r2["State"] in ("Deleting", "Deleted")


def test_list_organizations(url):
    c = make_client(url, account=new_account())
    assert c.list_organizations()["OrganizationSummaries"] == []
    ids = []
    for i in range(3):
        alias = unique_alias()
        ids.append((c.create_organization(Alias=alias)["OrganizationId"], alias))
    out = c.list_organizations()
    assert "NextToken" not in out
    summaries = out["OrganizationSummaries"]
    assert [s["OrganizationId"] for s in summaries] == [i for i, _ in ids]  # creation order
    for s, (oid, alias) in zip(summaries, ids):
        assert s["Alias"] == alias
        assert s["State"] == "Active"
        assert s["DefaultMailDomain"] == f"{alias}.awsapps.com"
        assert "ErrorMessage" not in s


def test_delete_organization_lifecycle(url, wm):
    org_id = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    out = wm.delete_organization(OrganizationId=org_id, DeleteDirectory=True)
    assert out["OrganizationId"] == org_id
    assert out["State"] == "Deleting"
    # Deleted orgs stay visible to Describe and List.
    assert wm.describe_organization(OrganizationId=org_id)["State"] == "Deleted"
    listed = {o["OrganizationId"]: o for o in wm.list_organizations()["OrganizationSummaries"]}
    assert listed[org_id]["State"] == "Deleted"
    # Repeat delete: 200 with the current state.
    again = wm.delete_organization(OrganizationId=org_id, DeleteDirectory=False)
    assert again["OrganizationId"] == org_id
    assert again["State"] == "Deleted"


def test_delete_unknown_org(wm):
    expect_error(
        wm.exceptions.OrganizationNotFoundException,
        wm.delete_organization,
        OrganizationId="m-" + uuid.uuid4().hex,
        DeleteDirectory=False,
    )


def test_delete_org_with_enabled_users_needs_force(url, wm, acct):
    org = make_org(wm, url, acct)
    uid = wm.create_user(OrganizationId=org.org_id, Name="enabled1", DisplayName="E")["UserId"]
    # A DISABLED user does not block deletion checks; an ENABLED one does.
    wm.register_to_work_mail(OrganizationId=org.org_id, EntityId=uid, Email=f"enabled1@{org.domain}")
    expect_error(
        wm.exceptions.OrganizationStateException,
        wm.delete_organization,
        OrganizationId=org.org_id,
        DeleteDirectory=False,
    )
    expect_error(
        wm.exceptions.OrganizationStateException,
        wm.delete_organization,
        OrganizationId=org.org_id,
        DeleteDirectory=False,
        ForceDelete=False,
    )
    assert wm.describe_organization(OrganizationId=org.org_id)["State"] == "Active"
    out = wm.delete_organization(OrganizationId=org.org_id, DeleteDirectory=False, ForceDelete=True)
    assert out["State"] == "Deleting"
    assert wm.describe_organization(OrganizationId=org.org_id)["State"] == "Deleted"


def test_delete_org_with_only_disabled_users_without_force(url, wm, acct):
    org = make_org(wm, url, acct)
    wm.create_user(OrganizationId=org.org_id, Name="disabled1", DisplayName="D")
    assert wm.delete_organization(OrganizationId=org.org_id, DeleteDirectory=False)["State"] == "Deleting"


def _deleted_org_calls(org_id, pat_id="pat123"):
    uid = "12345678-1234-1234-1234-123456789012"
    cfg = dict(
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration={
            "InstanceArn": "arn:aws:sso:::instance/ssoins-1111111111111111",
            "ApplicationArn": "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111",
        },
        PersonalAccessTokenConfiguration={"Status": "ACTIVE", "LifetimeInDays": 30},
    )
    return [
        ("create_user", dict(Name="newuser", DisplayName="N", Password="Passw0rd!Aa")),
        ("describe_user", dict(UserId=uid)),
        ("list_users", {}),
        ("update_user", dict(UserId=uid, DisplayName="x")),
        ("delete_user", dict(UserId=uid)),
        ("register_to_work_mail", dict(EntityId=uid, Email="a@example.com")),
        ("deregister_from_work_mail", dict(EntityId=uid)),
        ("reset_password", dict(UserId=uid, Password="Passw0rd!Bb")),
        ("put_identity_provider_configuration", cfg),
        ("describe_identity_provider_configuration", {}),
        ("delete_identity_provider_configuration", {}),
        ("list_personal_access_tokens", {}),
        ("get_personal_access_token_metadata", dict(PersonalAccessTokenId=pat_id)),
        ("delete_personal_access_token", dict(PersonalAccessTokenId=pat_id)),
    ]


def test_operations_on_deleted_org(url, wm, acct):
    org = make_org(wm, url, acct)
    wm.delete_organization(OrganizationId=org.org_id, DeleteDirectory=False)
    msg = f"Organization {org.org_id} is not Active, state: Deleted"
    failures = []
    for op, kwargs in _deleted_org_calls(org.org_id):
        try:
            getattr(wm, op)(OrganizationId=org.org_id, **kwargs)
            failures.append(f"{op}: succeeded")
        except wm.exceptions.OrganizationStateException as e:
            if e.response["Error"]["Message"] != msg:
                failures.append(f"{op}: message {e.response['Error']['Message']!r}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"{op}: {type(e).__name__} {getattr(e, 'response', {}).get('Error')}")
    assert not failures, "\n".join(failures)
    # Describe still works.
    assert wm.describe_organization(OrganizationId=org.org_id)["State"] == "Deleted"


def test_deleting_org_stops_its_pats(url):
    org = make_pat_org(url, users=("alice", "bobby"))
    toks = [org.users["alice"].create_pat(), org.users["bobby"].create_pat()]
    for u, t in zip(("alice", "bobby"), toks):
        assert verify(url, org.org_id, u, t["Token"]).status == 200
    org.client.delete_organization(OrganizationId=org.org_id, DeleteDirectory=False, ForceDelete=True)
    for u, t in zip(("alice", "bobby"), toks):
        r = verify(url, org.org_id, u, t["Token"])
        assert r.status == 401, r


def test_raw_describe_org_wire_format(url, acct, wm):
    org_id = wm.create_organization(Alias=unique_alias())["OrganizationId"]
    r = signed_request(url, "DescribeOrganization", {"OrganizationId": org_id}, account=acct)
    assert r.status == 200, r
    doc = r.json()
    assert "ErrorMessage" not in doc
    assert "null" not in r.body.decode(), r
    assert isinstance(doc["CompletedDate"], (int, float)) and not isinstance(doc["CompletedDate"], bool)


def test_client_token_scoped_by_operation_and_region(url, acct, wm):
    token = "scope-" + uuid.uuid4().hex
    alias = unique_alias()
    oid = wm.create_organization(Alias=alias, ClientToken=token)["OrganizationId"]
    # Same token in another region: an independent request.
    other_region = make_client(url, account=acct, region="sa-east-1")
    oid2 = other_region.create_organization(Alias=alias, ClientToken=token)["OrganizationId"]
    assert oid2 != oid
    # Same token on another operation: not a replay of CreateOrganization.
    out = wm.delete_organization(OrganizationId=oid, DeleteDirectory=False, ClientToken=token)
    assert out["OrganizationId"] == oid and out["State"] == "Deleting"
    assert wm.describe_organization(OrganizationId=oid)["State"] == "Deleted"
    # And the CreateOrganization record still replays its first answer.
    assert wm.create_organization(Alias=alias, ClientToken=token)["OrganizationId"] == oid
