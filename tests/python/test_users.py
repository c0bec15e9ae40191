"""CreateUser, DescribeUser, ListUsers, UpdateUser, DeleteUser, RegisterToWorkMail, DeregisterFromWorkMail,
ResetPassword (spec §6, §7.5-7.12, D5, D7, D8)."""

import datetime as dt
import uuid

import pytest

from conftest import (
    GUID_RE,
    PASSWORD,
    SESSION_401,
    expect_error,
    make_client,
    make_org,
    new_account,
    sign_in,
    signed_request,
    unique_alias,
)


@pytest.fixture
def org(url, wm, acct):
    return make_org(wm, url, acct)


def test_create_describe_register_deregister_delete(wm, org):
    oid = org.org_id
    uid = wm.create_user(OrganizationId=oid, Name="carol", DisplayName="Carol C", Password=PASSWORD)["UserId"]
    assert GUID_RE.match(uid), uid
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["UserId"] == uid
    assert d["Name"] == "carol"
    assert d["DisplayName"] == "Carol C"
    assert d["State"] == "DISABLED"
    assert d["UserRole"] == "USER"
    assert "Email" not in d and "EnabledDate" not in d

    email = f"carol@{org.domain}"
    wm.register_to_work_mail(OrganizationId=oid, EntityId=uid, Email=email)
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["State"] == "ENABLED"
    assert d["Email"] == email
    assert isinstance(d["EnabledDate"], dt.datetime)

    # DISABLED -> ENABLED -> DISABLED
    wm.deregister_from_work_mail(OrganizationId=oid, EntityId=uid)
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["State"] == "DISABLED"
    assert isinstance(d["DisabledDate"], dt.datetime)
    # Deregister again: no-op.
    wm.deregister_from_work_mail(OrganizationId=oid, EntityId=uid)

    # DISABLED -> DELETED; still described.
    wm.delete_user(OrganizationId=oid, UserId=uid)
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["State"] == "DELETED"
    assert d["UserId"] == uid
    # Deleting again: 200 (D6).
    wm.delete_user(OrganizationId=oid, UserId=uid)


def test_user_identifiers(wm, org):
    oid = org.org_id
    uid = wm.create_user(OrganizationId=oid, Name="dave", DisplayName="Dave")["UserId"]
    email = f"dave@{org.domain}"
    # Register by name.
    wm.register_to_work_mail(OrganizationId=oid, EntityId="dave", Email=email)
    for ident in (uid, "dave", email):
        assert wm.describe_user(OrganizationId=oid, UserId=ident)["UserId"] == uid, ident
    # Deregister by email.
    wm.deregister_from_work_mail(OrganizationId=oid, EntityId=email)
    assert wm.describe_user(OrganizationId=oid, UserId=uid)["State"] == "DISABLED"
    # Delete by username.
    wm.delete_user(OrganizationId=oid, UserId="dave")
    assert wm.describe_user(OrganizationId=oid, UserId=uid)["State"] == "DELETED"


def test_describe_unknown_user(wm, org):
    for ident in ("nobody", str(uuid.uuid4()), f"nobody@{org.domain}"):
        expect_error(wm.exceptions.EntityNotFoundException, wm.describe_user, OrganizationId=org.org_id, UserId=ident)


def test_create_user_unknown_org(wm):
    expect_error(
        wm.exceptions.OrganizationNotFoundException,
        wm.create_user,
        OrganizationId="m-" + uuid.uuid4().hex,
        Name="someone",
        DisplayName="S",
    )


def test_delete_enabled_user(wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="erin", DisplayName="E")["UserId"]
    wm.register_to_work_mail(OrganizationId=org.org_id, EntityId=uid, Email=f"erin@{org.domain}")
    expect_error(wm.exceptions.EntityStateException, wm.delete_user, OrganizationId=org.org_id, UserId=uid)
    assert wm.describe_user(OrganizationId=org.org_id, UserId=uid)["State"] == "ENABLED"


def test_delete_unknown_user(wm, org):
    expect_error(
        wm.exceptions.EntityNotFoundException, wm.delete_user, OrganizationId=org.org_id, UserId=str(uuid.uuid4())
    )


@pytest.mark.parametrize(
    "name", ["administrator", "admin", "root", "postmaster", "abuse", "hostmaster", "webmaster", "mailer-daemon"]
)
def test_reserved_names(wm, org, name):
    expect_error(
        wm.exceptions.ReservedNameException, wm.create_user, OrganizationId=org.org_id, Name=name, DisplayName="R"
    )


@pytest.mark.parametrize("pw", ["Sh0rt!a", "alllowercaseletters", "lowercase1234", "UPPERlower", "12345678!!"])
def test_weak_passwords(wm, org, pw):
    expect_error(
        wm.exceptions.InvalidPasswordException,
        wm.create_user,
        OrganizationId=org.org_id,
        Name="weakpw" + uuid.uuid4().hex[:6],
        DisplayName="W",
        Password=pw,
    )


def test_password_policy_three_of_four_classes_is_enough(wm, org):
    # upper+lower+digit, lower+digit+symbol, upper+lower+symbol: all fine.
    for i, pw in enumerate(["Abcdefg1", "abcdef1!", "Abcdefg!"]):
        wm.create_user(OrganizationId=org.org_id, Name=f"okpw{i}", DisplayName="O", Password=pw)


def test_duplicate_name(wm, org):
    wm.create_user(OrganizationId=org.org_id, Name="frank", DisplayName="F")
    expect_error(
        wm.exceptions.NameAvailabilityException,
        wm.create_user,
        OrganizationId=org.org_id,
        Name="frank",
        DisplayName="F2",
    )


def test_same_username_in_two_orgs(url, wm, acct, org):
    other = make_org(wm, url, acct)
    a = wm.create_user(OrganizationId=org.org_id, Name="gina", DisplayName="G")["UserId"]
    b = wm.create_user(OrganizationId=other.org_id, Name="gina", DisplayName="G")["UserId"]
    assert a != b
    # A user of one org is not found in the other through its id.
    expect_error(wm.exceptions.EntityNotFoundException, wm.describe_user, OrganizationId=other.org_id, UserId=a)


@pytest.mark.parametrize("role", ["SYSTEM_USER", "RESOURCE", "NOT_A_ROLE"])
def test_create_user_forbidden_role(wm, org, role):
    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.create_user,
        OrganizationId=org.org_id,
        Name="roleuser",
        DisplayName="R",
        Role=role,
    )


def test_create_user_remote_user_role(wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="remote1", DisplayName="R", Role="REMOTE_USER")["UserId"]
    assert wm.describe_user(OrganizationId=org.org_id, UserId=uid)["UserRole"] == "REMOTE_USER"


@pytest.mark.parametrize("name", ["bad name", "a<b", "a\x01b", "x" * 65])
def test_create_user_bad_name(wm, org, name):
    err = expect_error(
        wm.exceptions.InvalidParameterException,
        wm.create_user,
        OrganizationId=org.org_id,
        Name=name,
        DisplayName="B",
    )
    assert "Name" in err.response["Error"]["Message"]


def test_register_d5_cases(url, wm, acct):
    alias = unique_alias()
    oid = wm.create_organization(Alias=alias, Domains=[{"DomainName": "mail.example.org"}])["OrganizationId"]
    domain = f"{alias}.awsapps.com"
    u1 = wm.create_user(OrganizationId=oid, Name="henry", DisplayName="H")["UserId"]
    u2 = wm.create_user(OrganizationId=oid, Name="irene", DisplayName="I")["UserId"]

    # Domain not in the org.
    expect_error(
        wm.exceptions.MailDomainNotFoundException,
        wm.register_to_work_mail,
        OrganizationId=oid,
        EntityId=u1,
        Email="henry@not-our-domain.com",
    )
    # A domain passed at creation counts as verified.
    wm.register_to_work_mail(OrganizationId=oid, EntityId=u1, Email="henry@mail.example.org")
    assert wm.describe_user(OrganizationId=oid, UserId=u1)["Email"] == "henry@mail.example.org"
    # Same email again: no-op.
    wm.register_to_work_mail(OrganizationId=oid, EntityId=u1, Email="henry@mail.example.org")
    assert wm.describe_user(OrganizationId=oid, UserId=u1)["State"] == "ENABLED"
    # Different email on an ENABLED user.
    expect_error(
        wm.exceptions.EntityAlreadyRegisteredException,
        wm.register_to_work_mail,
        OrganizationId=oid,
        EntityId=u1,
        Email=f"henry@{domain}",
    )
    # Email held by another entity.
    expect_error(
        wm.exceptions.EmailAddressInUseException,
        wm.register_to_work_mail,
        OrganizationId=oid,
        EntityId=u2,
        Email="henry@mail.example.org",
    )
    assert wm.describe_user(OrganizationId=oid, UserId=u2)["State"] == "DISABLED"
    # Unknown entity.
    expect_error(
        wm.exceptions.EntityNotFoundException,
        wm.register_to_work_mail,
        OrganizationId=oid,
        EntityId="nobody",
        Email=f"nobody@{domain}",
    )
    # DELETED entity.
    wm.delete_user(OrganizationId=oid, UserId=u2)
    expect_error(
        wm.exceptions.EntityStateException,
        wm.register_to_work_mail,
        OrganizationId=oid,
        EntityId=u2,
        Email=f"irene@{domain}",
    )
    expect_error(wm.exceptions.EntityStateException, wm.deregister_from_work_mail, OrganizationId=oid, EntityId=u2)


def test_register_bad_email_pattern(wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="jack", DisplayName="J")["UserId"]
    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.register_to_work_mail,
        OrganizationId=org.org_id,
        EntityId=uid,
        Email="not-an-email",
    )


def test_deregister_unknown(wm, org):
    expect_error(
        wm.exceptions.EntityNotFoundException,
        wm.deregister_from_work_mail,
        OrganizationId=org.org_id,
        EntityId="ghost",
    )


def test_update_user(wm, org):
    oid = org.org_id
    uid = wm.create_user(
        OrganizationId=oid, Name="kate", DisplayName="Kate", FirstName="Kate", LastName="Smith"
    )["UserId"]
    wm.update_user(OrganizationId=oid, UserId=uid, DisplayName="Kate S.", JobTitle="Engineer", City="Oslo")
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["DisplayName"] == "Kate S."
    assert d["JobTitle"] == "Engineer"
    assert d["City"] == "Oslo"
    # Omitted members unchanged.
    assert d["FirstName"] == "Kate"
    assert d["LastName"] == "Smith"
    # By username and by email (after registration), HiddenFromGlobalAddressList round-trip.
    wm.register_to_work_mail(OrganizationId=oid, EntityId=uid, Email=f"kate@{org.domain}")
    wm.update_user(OrganizationId=oid, UserId="kate", Department="R&D")
    wm.update_user(OrganizationId=oid, UserId=f"kate@{org.domain}", HiddenFromGlobalAddressList=True, Role="USER")
    d = wm.describe_user(OrganizationId=oid, UserId=uid)
    assert d["Department"] == "R&D"
    assert d["HiddenFromGlobalAddressList"] is True
    assert d["JobTitle"] == "Engineer"


def test_update_user_errors(wm, org):
    oid = org.org_id
    expect_error(wm.exceptions.EntityNotFoundException, wm.update_user, OrganizationId=oid, UserId="ghost")
    uid = wm.create_user(OrganizationId=oid, Name="leo", DisplayName="L")["UserId"]
    expect_error(
        wm.exceptions.InvalidParameterException, wm.update_user, OrganizationId=oid, UserId=uid, Role="SYSTEM_USER"
    )
    expect_error(
        wm.exceptions.InvalidParameterException, wm.update_user, OrganizationId=oid, UserId=uid, City="x" * 257
    )
    wm.delete_user(OrganizationId=oid, UserId=uid)
    expect_error(
        wm.exceptions.EntityStateException, wm.update_user, OrganizationId=oid, UserId=uid, DisplayName="x"
    )


def test_reset_password(url, wm, org):
    oid = org.org_id
    name = "resetuser-long"  # >= 12 chars so botocore lets it through as a WorkMailIdentifier
    uid = wm.create_user(OrganizationId=oid, Name=name, DisplayName="R", Password=PASSWORD)["UserId"]
    email = f"{name}@{org.domain}"
    wm.register_to_work_mail(OrganizationId=oid, EntityId=uid, Email=email)
    assert sign_in(url, oid, name, PASSWORD).status == 200
    new_pw = "N3w-Passw0rd"
    wm.reset_password(OrganizationId=oid, UserId=uid, Password=new_pw)
    r = sign_in(url, oid, name, PASSWORD)
    assert r.status == 401 and r.json() == SESSION_401, r
    r = sign_in(url, oid, name, new_pw)
    assert r.status == 200, r
    assert r.json()["UserId"] == uid
    # Sign in by email.
    assert sign_in(url, oid, email, new_pw).status == 200
    # By username and by email.
    wm.reset_password(OrganizationId=oid, UserId=name, Password="Th1rd-Passw0rd")
    assert sign_in(url, oid, name, "Th1rd-Passw0rd").status == 200
    wm.reset_password(OrganizationId=oid, UserId=email, Password="F0urth-Passw0rd")
    assert sign_in(url, oid, name, "F0urth-Passw0rd").status == 200
    assert sign_in(url, oid, name, "Th1rd-Passw0rd").status == 401
    # Weak password.
    expect_error(
        wm.exceptions.InvalidPasswordException, wm.reset_password, OrganizationId=oid, UserId=uid, Password="weak"
    )
    # Unknown user.
    expect_error(
        wm.exceptions.EntityNotFoundException,
        wm.reset_password,
        OrganizationId=oid,
        UserId=str(uuid.uuid4()),
        Password=new_pw,
    )
    # DELETED user.
    wm.deregister_from_work_mail(OrganizationId=oid, EntityId=uid)
    wm.delete_user(OrganizationId=oid, UserId=uid)
    expect_error(
        wm.exceptions.EntityStateException, wm.reset_password, OrganizationId=oid, UserId=uid, Password=new_pw
    )


def test_sign_in_rejects_disabled_user(url, wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="mike", DisplayName="M", Password=PASSWORD)["UserId"]
    r = sign_in(url, org.org_id, "mike", PASSWORD)  # never registered: DISABLED
    assert r.status == 401 and r.json() == SESSION_401, r
    wm.register_to_work_mail(OrganizationId=org.org_id, EntityId=uid, Email=f"mike@{org.domain}")
    assert sign_in(url, org.org_id, "mike", PASSWORD).status == 200


def _names(resp):
    return [u["Name"] for u in resp["Users"]]


def test_list_users_and_filters(wm, org):
    oid = org.org_id
    ids = {}
    for name, disp in [("nora", "Nora Alpha"), ("nick", "Nick Beta"), ("olga", "Olga Alpha"), ("paul", "Paul")]:
        ids[name] = wm.create_user(OrganizationId=oid, Name=name, DisplayName=disp)["UserId"]
    wm.register_to_work_mail(OrganizationId=oid, EntityId=ids["nora"], Email=f"nora@{org.domain}")
    wm.register_to_work_mail(OrganizationId=oid, EntityId=ids["olga"], Email=f"zz-olga@{org.domain}")
    wm.delete_user(OrganizationId=oid, UserId=ids["paul"])

    allu = wm.list_users(OrganizationId=oid)
    assert "NextToken" not in allu
    assert _names(allu) == ["nora", "nick", "olga", "paul"]  # creation order; DELETED still listed
    by = {u["Name"]: u for u in allu["Users"]}
    assert by["paul"]["State"] == "DELETED"
    assert by["nora"]["State"] == "ENABLED" and by["nora"]["Email"] == f"nora@{org.domain}"
    assert by["nora"]["Id"] == ids["nora"]
    assert isinstance(by["nora"]["EnabledDate"], dt.datetime)
    assert by["nick"]["State"] == "DISABLED" and "Email" not in by["nick"]
    assert by["nick"]["DisplayName"] == "Nick Beta"
    assert by["nick"]["UserRole"] == "USER"

    assert _names(wm.list_users(OrganizationId=oid, Filters={"UsernamePrefix": "n"})) == ["nora", "nick"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"DisplayNamePrefix": "Olga"})) == ["olga"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"PrimaryEmailPrefix": "zz-"})) == ["olga"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"State": "DELETED"})) == ["paul"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"State": "DISABLED"})) == ["nick"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"State": "ENABLED"})) == ["nora", "olga"]
    assert _names(wm.list_users(OrganizationId=oid, Filters={"UsernamePrefix": "zzz"})) == []

    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.list_users,
        OrganizationId=oid,
        Filters={"UsernamePrefix": "n", "State": "ENABLED"},
    )
    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.list_users,
        OrganizationId=oid,
        Filters={"State": "NOT_A_STATE"},
    )


def test_list_users_unknown_org(wm):
    expect_error(wm.exceptions.OrganizationNotFoundException, wm.list_users, OrganizationId="m-" + uuid.uuid4().hex)


def test_users_of_other_account_invisible(url, wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="quinn", DisplayName="Q")["UserId"]
    other = make_client(url, account=new_account())
    expect_error(
        other.exceptions.OrganizationNotFoundException, other.describe_user, OrganizationId=org.org_id, UserId=uid
    )


def test_describe_user_raw_omits_absent_members(url, acct, wm, org):
    uid = wm.create_user(OrganizationId=org.org_id, Name="rita", DisplayName="R")["UserId"]
    r = signed_request(url, "DescribeUser", {"OrganizationId": org.org_id, "UserId": uid}, account=acct)
    assert r.status == 200, r
    doc = r.json()
    assert "null" not in r.body.decode(), r
    for k in ("Email", "EnabledDate", "DisabledDate", "JobTitle", "FirstName"):
        assert k not in doc, (k, doc)
    assert doc["State"] == "DISABLED"


def test_identity_provider_user_id(wm, org):
    oid = org.org_id
    idp = "1234567890-" + str(uuid.uuid4())
    uid = wm.create_user(OrganizationId=oid, Name="idcuser", DisplayName="I", IdentityProviderUserId=idp)["UserId"]
    assert wm.describe_user(OrganizationId=oid, UserId=uid)["IdentityProviderUserId"] == idp
    wm.create_user(OrganizationId=oid, Name="plainuser", DisplayName="P")
    got = wm.list_users(OrganizationId=oid, Filters={"IdentityProviderUserIdPrefix": idp[:14]})["Users"]
    assert [u["Id"] for u in got] == [uid]
    assert got[0]["IdentityProviderUserId"] == idp
    wm.update_user(OrganizationId=oid, UserId=uid, IdentityProviderUserId="")
    assert "IdentityProviderUserId" not in wm.describe_user(OrganizationId=oid, UserId=uid)
    expect_error(
        wm.exceptions.InvalidParameterException,
        wm.create_user,
        OrganizationId=oid,
        Name="badidp",
        DisplayName="B",
        IdentityProviderUserId="not-a-guid",
    )


def test_delete_user_resolves_email(wm, org):
    # D7: every user-taking parameter accepts id, username or email (DeleteUser included). Deregistration drops the
    # address, so the email form can only name an ENABLED user: it must resolve (EntityStateException), not 404.
    oid = org.org_id
    uid = wm.create_user(OrganizationId=oid, Name="byemail", DisplayName="B")["UserId"]
    email = f"byemail@{org.domain}"
    wm.register_to_work_mail(OrganizationId=oid, EntityId=uid, Email=email)
    expect_error(wm.exceptions.EntityStateException, wm.delete_user, OrganizationId=oid, UserId=email)
    assert wm.describe_user(OrganizationId=oid, UserId=uid)["State"] == "ENABLED"
