"""Self-service web API and /auth/v1/verify (issue 2 §5, CONTRACT.md)."""

import time
import uuid

import pytest

from conftest import (
    PASSWORD,
    SECRET_RE,
    SESSION_401,
    VERIFY_401,
    assert_verify_401,
    make_pat_org,
    sign_in,
    verify,
    webapp,
)

PATS = "/webapp/api/personal-access-tokens"


@pytest.fixture(scope="module")
def env(url):
    return make_pat_org(url, users=("alice", "bob"), lifetime=10)


def test_sign_in(url, env):
    alice = env.users["alice"]
    before = time.time()
    r = sign_in(url, env.org_id, "alice", PASSWORD)
    assert r.status == 200, r
    doc = r.json()
    assert doc["UserId"] == alice.user_id
    assert isinstance(doc["SessionToken"], str) and len(doc["SessionToken"]) >= 16
    assert isinstance(doc["ExpiresTime"], (int, float)) and doc["ExpiresTime"] > before
    # by email too
    r = sign_in(url, env.org_id, alice.email, PASSWORD)
    assert r.status == 200 and r.json()["UserId"] == alice.user_id, r


def test_sign_in_failures_are_uniform(url, env):
    cases = [
        (env.org_id, "alice", "wrong-Passw0rd"),
        (env.org_id, "nobody", PASSWORD),
        ("m-" + uuid.uuid4().hex, "alice", PASSWORD),
        ("not-an-org", "alice", PASSWORD),
        (env.org_id, "alice", ""),
    ]
    for org_id, user, pw in cases:
        r = sign_in(url, org_id, user, pw)
        assert r.status == 401, (org_id, user, r)
        assert r.json() == SESSION_401, r
    r = webapp(url, "POST", "/webapp/api/sessions", b"not json")
    assert r.status in (400, 401), r


def test_create_token(url, env):
    alice = env.users["alice"]
    before = time.time()
    t = alice.create_pat(name="laptop")
    assert set(t) == {"PersonalAccessTokenId", "Token", "Name", "DateCreated", "ExpiresTime", "Scopes"}
    assert SECRET_RE.match(t["Token"]), t["Token"]
    assert len(t["Token"]) >= len("wmpat_") + 22  # >= 128 bits in base62
    assert t["Name"] == "laptop"
    assert t["Scopes"] == ["IMAP", "SMTP"]
    assert before - 2 <= t["DateCreated"] <= time.time() + 2
    assert abs(t["ExpiresTime"] - t["DateCreated"] - 10 * 86400) < 1e-6
    # The secret never comes back.
    lst = alice.list_pats()
    assert lst.status == 200, lst
    assert t["Token"] not in lst.body.decode()
    # Two tokens never share a secret.
    t2 = alice.create_pat(name="laptop")
    assert t2["Token"] != t["Token"] and t2["PersonalAccessTokenId"] != t["PersonalAccessTokenId"]


def test_list_own_tokens_only(url, env):
    alice, bob = env.users["alice"], env.users["bob"]
    ta = alice.create_pat(name="alice-own")
    tb = bob.create_pat(name="bob-own", scopes=["SMTP"])
    la = alice.list_pats().json()["PersonalAccessTokenSummaries"]
    lb = bob.list_pats().json()["PersonalAccessTokenSummaries"]
    ids_a = {s["PersonalAccessTokenId"] for s in la}
    ids_b = {s["PersonalAccessTokenId"] for s in lb}
    assert ta["PersonalAccessTokenId"] in ids_a and tb["PersonalAccessTokenId"] not in ids_a
    assert tb["PersonalAccessTokenId"] in ids_b and ta["PersonalAccessTokenId"] not in ids_b
    s = [x for x in lb if x["PersonalAccessTokenId"] == tb["PersonalAccessTokenId"]][0]
    assert s["UserId"] == bob.user_id and s["Name"] == "bob-own" and s["Scopes"] == ["SMTP"]
    assert "Token" not in s and "DateLastUsed" not in s
    # Same as the admin view.
    admin = env.client.list_personal_access_tokens(OrganizationId=env.org_id, UserId=bob.user_id)
    assert {x["PersonalAccessTokenId"] for x in admin["PersonalAccessTokenSummaries"]} == ids_b


def test_delete_own_token(url, env):
    alice, bob = env.users["alice"], env.users["bob"]
    t = alice.create_pat(name="deleteme")
    # Bob can't delete Alice's.
    r = bob.delete_pat(t["PersonalAccessTokenId"])
    assert r.status == 404, r
    assert r.json()["__type"] == "ResourceNotFoundException"
    assert alice.verify(t["Token"]).status == 200
    r = alice.delete_pat(t["PersonalAccessTokenId"])
    assert r.status == 204, r
    assert t["PersonalAccessTokenId"] not in alice.list_pats().body.decode()
    assert_verify_401(alice.verify(t["Token"]))
    r = alice.delete_pat(t["PersonalAccessTokenId"])
    assert r.status == 404, r
    r = alice.delete_pat("neverexisted")
    assert r.status == 404, r


def test_requires_session(url, env):
    for bearer in (None, "garbage", ""):
        for method, path, body in (("GET", PATS, None), ("POST", PATS, {"Name": "x"}), ("DELETE", PATS + "/abc", None)):
            r = webapp(url, method, path, body, bearer=bearer)
            assert r.status == 401, (method, bearer, r)
            assert r.json()["__type"] == "UnauthorizedException", r


@pytest.mark.parametrize(
    "body",
    [
        {"Name": "a<b"},
        {"Name": "a>b"},
        {"Name": "a\\b"},
        {"Name": "bell\x07"},
        {"Name": "del\x7f"},
        {"Name": ""},
        {"Name": "x" * 65},
        {},
        {"Name": "ok", "Scopes": []},
        {"Name": "ok", "Scopes": [f"S{i}" for i in range(11)]},
        {"Name": "ok", "Scopes": ["IM<AP"]},
        {"Name": "ok", "Scopes": ["x" * 257]},
        {"Name": "ok", "Scopes": [""]},
        {"Name": 5},
        {"Name": "ok", "Scopes": "IMAP"},
    ],
)
def test_create_invalid_input(url, env, body):
    alice = env.users["alice"]
    r = webapp(url, "POST", PATS, body, bearer=alice.session)
    assert r.status == 400, (body, r)
    assert r.json()["__type"] == "InvalidParameterException", r


def test_lengths_count_characters(url, env):
    alice = env.users["alice"]
    t = alice.create_pat(name="é" * 64, scopes=["ü" * 256])
    assert t["Name"] == "é" * 64 and t["Scopes"] == ["ü" * 256]
    r = webapp(url, "POST", PATS, {"Name": "é" * 65}, bearer=alice.session)
    assert r.status == 400, r


def test_create_forbidden_without_active_configuration(url):
    org = make_pat_org(url, users=("fay",))
    fay = org.users["fay"]
    fay.create_pat(name="before")
    org.put_pat_config(status="INACTIVE")
    r = webapp(url, "POST", PATS, {"Name": "x"}, bearer=fay.session)
    assert r.status == 403 and r.json()["__type"] == "ForbiddenException", r
    # INACTIVE also blocks self-service listing and deletion (D9).
    r = fay.list_pats()
    assert r.status == 403 and r.json()["__type"] == "ForbiddenException", r
    org.client.delete_identity_provider_configuration(OrganizationId=org.org_id)
    r = webapp(url, "POST", PATS, {"Name": "x"}, bearer=fay.session)
    assert r.status == 403 and r.json()["__type"] == "ForbiddenException", r
    org.put_pat_config(status="ACTIVE")
    fay.create_pat(name="after")


def test_create_forbidden_for_disabled_user(url):
    org = make_pat_org(url, users=("gus",))
    gus = org.users["gus"]
    org.client.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=gus.user_id)
    r = webapp(url, "POST", PATS, {"Name": "x"}, bearer=gus.session)
    assert r.status in (401, 403), r
    assert r.json()["__type"] in ("ForbiddenException", "UnauthorizedException"), r


def test_verify_success_and_scopes(url, env):
    alice = env.users["alice"]
    t = alice.create_pat(name="scoped")  # default IMAP, SMTP
    for scope in ("IMAP", "SMTP"):
        r = alice.verify(t["Token"], scope=scope)
        assert r.status == 200, (scope, r)
        assert r.json() == {"OrganizationId": env.org_id, "UserId": alice.user_id, "PersonalAccessTokenId": t["PersonalAccessTokenId"]}
    # Without a Scope any token would pass: refused (issue 12, defect 12; see test_trust_limits.py).
    assert_verify_401(alice.verify(t["Token"], scope=None))
    r = alice.verify(t["Token"], username=alice.email)
    assert r.status == 200, r
    assert_verify_401(alice.verify(t["Token"], scope="EWS"))
    smtp_only = alice.create_pat(name="smtp-only", scopes=["SMTP"])
    assert alice.verify(smtp_only["Token"], scope="SMTP").status == 200
    assert_verify_401(alice.verify(smtp_only["Token"], scope="IMAP"))


def test_verify_sets_date_last_used_at_once(url, env):
    bob = env.users["bob"]
    t = bob.create_pat(name="lastused")
    c = env.client
    m = c.get_personal_access_token_metadata(OrganizationId=env.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    assert "DateLastUsed" not in m
    assert bob.verify(t["Token"]).status == 200
    m = c.get_personal_access_token_metadata(OrganizationId=env.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    assert "DateLastUsed" in m
    assert abs(m["DateLastUsed"].timestamp() - time.time()) < 10
    # A failed attempt (wrong scope) does not count as a use... and neither moves it backwards.
    first = m["DateLastUsed"]
    bob.verify(t["Token"], scope="NOPE")
    assert bob.verify(t["Token"]).status == 200
    m2 = c.get_personal_access_token_metadata(OrganizationId=env.org_id, PersonalAccessTokenId=t["PersonalAccessTokenId"])
    assert m2["DateLastUsed"] >= first
    assert (m2["DateLastUsed"] - first).total_seconds() < 60


def test_verify_failures_are_uniform(url, env):
    alice, bob = env.users["alice"], env.users["bob"]
    ta = alice.create_pat(name="va")
    tb = bob.create_pat(name="vb")
    deleted = alice.create_pat(name="vdel")
    assert alice.delete_pat(deleted["PersonalAccessTokenId"]).status == 204
    tok = ta["Token"]
    flipped = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    bodies = [
        {"OrganizationId": env.org_id, "Username": "alice", "Token": tok + "x"},  # wrong token
        {"OrganizationId": env.org_id, "Username": "alice", "Token": flipped},  # checksum broken
        {"OrganizationId": env.org_id, "Username": "alice", "Token": tb["Token"]},  # other user's
        {"OrganizationId": env.org_id, "Username": "bob", "Token": tok},  # owner mismatch
        {"OrganizationId": env.org_id, "Username": "alice", "Token": deleted["Token"]},  # deleted
        {"OrganizationId": env.org_id, "Username": "alice", "Token": tok, "Scope": "POP3"},  # scope
        {"OrganizationId": env.org_id, "Username": "nobody", "Token": tok},
        {"OrganizationId": "m-" + uuid.uuid4().hex, "Username": "alice", "Token": tok},
        {"OrganizationId": env.org_id, "Username": "alice", "Token": ""},
        {"OrganizationId": env.org_id, "Username": "alice", "Token": "wmpat_"},
        {"OrganizationId": env.org_id, "Username": "alice", "Token": "not a token at all <>"},
        {"OrganizationId": env.org_id, "Username": "alice"},
        {"OrganizationId": env.org_id, "Username": "alice", "Token": 12},
        {},
    ]
    for b in bodies:
        r = verify(url, None, None, None, raw_body=b)
        assert r.status == 401, (b, r)
        assert r.body == verify(url, env.org_id, "alice", "wmpat_x").body, (b, r)
        assert r.json() == VERIFY_401
    for raw in (b"", b"not json", b"[]", b'"str"'):
        r = webapp(url, "POST", "/auth/v1/verify", raw)
        assert r.status == 401, (raw, r)
        assert r.json() == VERIFY_401, r
    # The good one still works after all that.
    assert alice.verify(tok).status == 200


def test_verify_inactive_configuration(url):
    org = make_pat_org(url, users=("hal",))
    hal = org.users["hal"]
    t = hal.create_pat()
    assert hal.verify(t["Token"]).status == 200
    org.put_pat_config(status="INACTIVE")
    assert_verify_401(hal.verify(t["Token"]))
    org.put_pat_config(status="ACTIVE")
    assert hal.verify(t["Token"]).status == 200


def test_verify_disabled_user(url):
    org = make_pat_org(url, users=("ivy",))
    ivy = org.users["ivy"]
    t = ivy.create_pat()
    org.client.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=ivy.user_id)
    assert_verify_401(ivy.verify(t["Token"]))
    org.client.register_to_work_mail(OrganizationId=org.org_id, EntityId=ivy.user_id, Email=ivy.email)
    assert ivy.verify(t["Token"]).status == 200


def test_create_requires_active_org(url):
    org = make_pat_org(url, users=("jon",))
    jon = org.users["jon"]
    t = jon.create_pat()
    org.client.delete_organization(OrganizationId=org.org_id, DeleteDirectory=False, ForceDelete=True)
    r = webapp(url, "POST", PATS, {"Name": "x"}, bearer=jon.session)
    assert r.status in (401, 403), r
    assert_verify_401(jon.verify(t["Token"]))
    r = sign_in(url, org.org_id, "jon", PASSWORD)
    assert r.status == 401 and r.json() == SESSION_401, r


def test_date_last_used_moves_at_most_once_a_minute(url, env):
    alice = env.users["alice"]
    t = alice.create_pat(name="coarse")
    pid = t["PersonalAccessTokenId"]
    assert alice.verify(t["Token"]).status == 200
    first = env.client.get_personal_access_token_metadata(OrganizationId=env.org_id, PersonalAccessTokenId=pid)[
        "DateLastUsed"
    ]
    time.sleep(1.2)
    assert alice.verify(t["Token"]).status == 200
    second = env.client.get_personal_access_token_metadata(OrganizationId=env.org_id, PersonalAccessTokenId=pid)[
        "DateLastUsed"
    ]
    assert second == first


def test_secrets_not_in_logs_or_database(server, url, env):
    bob = env.users["bob"]
    t = bob.create_pat(name="secret-check")
    assert bob.verify(t["Token"]).status == 200
    assert bob.verify(t["Token"] + "x").status == 401
    assert sign_in(url, env.org_id, "bob", PASSWORD).status == 200
    secret = t["Token"].encode()
    body = secret[len("wmpat_") :]
    logs = server.stderr_path.read_bytes() + "\n".join(server.stdout_lines).encode()
    assert secret not in logs and body not in logs, "PAT secret appears in the server's output"
    assert PASSWORD.encode() not in logs, "password appears in the server's output"
    blobs = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = server.db_path.parent / (server.db_path.name + suffix)
        if p.exists():
            blobs += p.read_bytes()
    assert blobs, "database file not found"
    assert secret not in blobs and body not in blobs, "PAT secret stored in the database"
    assert PASSWORD.encode() not in blobs, "password stored in clear in the database"
