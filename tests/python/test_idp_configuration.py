"""Put/Describe/DeleteIdentityProviderConfiguration (spec §7.13-7.15, D6, D9, D11)."""

import uuid

import pytest

from conftest import IDC_APPLICATION_ARN, IDC_INSTANCE_ARN, expect_error, make_org, signed_request

IDC = {"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": IDC_APPLICATION_ARN}


@pytest.fixture
def org(url, wm, acct):
    return make_org(wm, url, acct)


def test_describe_without_configuration(wm, org):
    expect_error(
        wm.exceptions.ResourceNotFoundException,
        wm.describe_identity_provider_configuration,
        OrganizationId=org.org_id,
    )


def test_delete_without_configuration_is_ok(wm, org):
    out = wm.delete_identity_provider_configuration(OrganizationId=org.org_id)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_put_describe_delete(wm, org):
    oid = org.org_id
    wm.put_identity_provider_configuration(
        OrganizationId=oid,
        AuthenticationMode="IDENTITY_PROVIDER_ONLY",
        IdentityCenterConfiguration=IDC,
        PersonalAccessTokenConfiguration={"Status": "ACTIVE", "LifetimeInDays": 90},
    )
    d = wm.describe_identity_provider_configuration(OrganizationId=oid)
    assert d["AuthenticationMode"] == "IDENTITY_PROVIDER_ONLY"
    assert d["IdentityCenterConfiguration"] == IDC
    assert d["PersonalAccessTokenConfiguration"] == {"Status": "ACTIVE", "LifetimeInDays": 90}

    # Put again replaces it.
    wm.put_identity_provider_configuration(
        OrganizationId=oid,
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration=IDC,
        PersonalAccessTokenConfiguration={"Status": "INACTIVE", "LifetimeInDays": 3653},
    )
    d = wm.describe_identity_provider_configuration(OrganizationId=oid)
    assert d["AuthenticationMode"] == "IDENTITY_PROVIDER_AND_DIRECTORY"
    assert d["PersonalAccessTokenConfiguration"] == {"Status": "INACTIVE", "LifetimeInDays": 3653}

    wm.delete_identity_provider_configuration(OrganizationId=oid)
    expect_error(
        wm.exceptions.ResourceNotFoundException, wm.describe_identity_provider_configuration, OrganizationId=oid
    )
    wm.delete_identity_provider_configuration(OrganizationId=oid)


def test_lifetime_defaults_to_365(wm, org):
    wm.put_identity_provider_configuration(
        OrganizationId=org.org_id,
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration=IDC,
        PersonalAccessTokenConfiguration={"Status": "ACTIVE"},
    )
    d = wm.describe_identity_provider_configuration(OrganizationId=org.org_id)
    assert d["PersonalAccessTokenConfiguration"] == {"Status": "ACTIVE", "LifetimeInDays": 365}


@pytest.mark.parametrize(
    "override",
    [
        {"AuthenticationMode": "PASSWORD_ONLY"},
        {"IdentityCenterConfiguration": {"InstanceArn": "arn:aws:sso:::instance/bogus", "ApplicationArn": IDC_APPLICATION_ARN}},
        {"IdentityCenterConfiguration": {"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": "arn:aws:sso::12:application/x"}},
        {"PersonalAccessTokenConfiguration": {"Status": "MAYBE", "LifetimeInDays": 30}},
        {"PersonalAccessTokenConfiguration": {"Status": "ACTIVE", "LifetimeInDays": 3654}},
    ],
    ids=["mode", "instance-arn", "application-arn", "status", "lifetime-max"],
)
def test_put_invalid(wm, org, override):
    args = dict(
        OrganizationId=org.org_id,
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration=IDC,
        PersonalAccessTokenConfiguration={"Status": "ACTIVE", "LifetimeInDays": 30},
    )
    args.update(override)
    expect_error(wm.exceptions.InvalidParameterException, wm.put_identity_provider_configuration, **args)
    # Nothing was stored.
    expect_error(
        wm.exceptions.ResourceNotFoundException,
        wm.describe_identity_provider_configuration,
        OrganizationId=org.org_id,
    )


def test_put_lifetime_zero_raw(url, acct, org):
    # botocore enforces the min (1) client-side, so send it raw.
    r = signed_request(
        url,
        "PutIdentityProviderConfiguration",
        {
            "OrganizationId": org.org_id,
            "AuthenticationMode": "IDENTITY_PROVIDER_AND_DIRECTORY",
            "IdentityCenterConfiguration": IDC,
            "PersonalAccessTokenConfiguration": {"Status": "ACTIVE", "LifetimeInDays": 0},
        },
        account=acct,
    )
    assert r.status == 400 and r.error_type == "InvalidParameterException", r
    assert "LifetimeInDays" in r.json()["Message"], r


def test_unknown_org(wm):
    oid = "m-" + uuid.uuid4().hex
    for fn, kw in [
        (wm.describe_identity_provider_configuration, {}),
        (wm.delete_identity_provider_configuration, {}),
        (
            wm.put_identity_provider_configuration,
            dict(
                AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
                IdentityCenterConfiguration=IDC,
                PersonalAccessTokenConfiguration={"Status": "ACTIVE"},
            ),
        ),
    ]:
        expect_error(wm.exceptions.OrganizationNotFoundException, fn, OrganizationId=oid, **kw)
