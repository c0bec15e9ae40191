"""Process lifecycle (listen line, signals, loopback rule) and persistence across restarts."""

import json
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import (
    BIN,
    ServerProcess,
    make_client,
    make_pat_org,
    new_account,
    signed_request,
    verify,
)


def test_sigint_exits_cleanly(tmp_path):
    srv = ServerProcess(tmp_path, db_url="sqlite::memory:", name="sigint").start()
    r = signed_request(srv.url, "ListOrganizations", {})
    assert r.status == 200, r
    assert srv.stop(sig=signal.SIGINT) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_right_after_listening_line(tmp_path, sig):
    """The line says the server accepts connections; a supervisor may stop it at once. It must still shut down
    gracefully (exit 0), i.e. the signal handlers must be installed before the line is printed."""
    codes = []
    for i in range(5):
        srv = ServerProcess(tmp_path / str(i), db_url="sqlite::memory:", name=f"early{i}").start()
        codes.append(srv.stop(sig=sig, settle=0))
    assert codes == [0] * 5, f"exit codes {codes} (negative = killed by the signal's default action)"


def test_sigterm_exits_cleanly_and_frees_port(tmp_path):
    srv = ServerProcess(tmp_path, name="sigterm").start()
    assert srv.stop(sig=signal.SIGTERM) == 0
    with pytest.raises(OSError):
        signed_request(srv.url, "ListOrganizations", {})


def test_accept_any_refuses_non_loopback(tmp_path):
    p = subprocess.run(
        [BIN, "serve", "--listen", "0.0.0.0:0", "--database", "sqlite::memory:"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "listening on" not in p.stdout


def test_accept_any_non_loopback_with_flag(tmp_path):
    srv = ServerProcess(
        tmp_path,
        db_url="sqlite::memory:",
        listen="0.0.0.0:0",
        extra_args=["--allow-insecure-any-credentials"],
        name="insecure",
    ).start()
    try:
        r = signed_request(f"http://127.0.0.1:{srv.port}", "ListOrganizations", {})
        assert r.status == 200, r
    finally:
        assert srv.stop() == 0


def test_persistence_across_restart(tmp_path):
    srv = ServerProcess(tmp_path, name="persist").start()
    acct = new_account()
    org = make_pat_org(srv.url, account=acct, users=("alice", "bob"))
    toks = [org.users["alice"].create_pat(name=f"p{i}") for i in range(5)]
    ct = "persist-" + uuid.uuid4().hex
    c = make_client(srv.url, account=acct)
    ct_org = c.create_organization(Alias=f"ct{uuid.uuid4().hex[:10]}", ClientToken=ct)
    ct_alias = c.describe_organization(OrganizationId=ct_org["OrganizationId"])["Alias"]
    # Begin a walk, then restart in the middle of it.
    first = c.list_personal_access_tokens(OrganizationId=org.org_id, MaxResults=2)
    assert len(first["PersonalAccessTokenSummaries"]) == 2 and first["NextToken"]
    users_before = c.list_users(OrganizationId=org.org_id)["Users"]
    assert toks[0]["Token"]
    assert srv.stop() == 0

    srv.start()  # same database file, new port
    c = make_client(srv.url, account=acct)
    assert c.describe_organization(OrganizationId=org.org_id)["State"] == "Active"
    assert c.list_users(OrganizationId=org.org_id)["Users"] == users_before
    rest = c.list_personal_access_tokens(OrganizationId=org.org_id, MaxResults=10, NextToken=first["NextToken"])
    ids = [s["PersonalAccessTokenId"] for s in first["PersonalAccessTokenSummaries"] + rest["PersonalAccessTokenSummaries"]]
    assert ids == [t["PersonalAccessTokenId"] for t in toks]
    assert "NextToken" not in rest
    # PAT made before the restart still verifies; session-less password still works.
    r = verify(srv.url, org.org_id, "alice", toks[0]["Token"])
    assert r.status == 200, r
    # ClientToken records survive the restart.
    again = c.create_organization(Alias=ct_alias, ClientToken=ct)
    assert again["OrganizationId"] == ct_org["OrganizationId"]
    # New tokens can be created after the restart (the user signs in again).
    org.url = srv.url
    for u in org.users.values():
        u.url = srv.url
        u.session = None
    t = org.users["bob"].create_pat(name="after")
    assert verify(srv.url, org.org_id, "bob", t["Token"]).status == 200
    assert srv.stop() == 0


def test_generated_keys_live_beside_the_database(tmp_path):
    srv = ServerProcess(tmp_path, name="keys").start()
    try:
        names = sorted(p.name for p in tmp_path.iterdir())
        assert "wm.db.token-key" in names and "wm.db.pepper" in names, names
        for n in ("wm.db.token-key", "wm.db.pepper"):
            content = (tmp_path / n).read_text().strip()
            assert len(content) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in content), n
    finally:
        assert srv.stop() == 0


def test_explicit_key_files(tmp_path):
    """--token-key-file/--pepper-file are used instead of generated files, and a NextToken survives a restart."""
    key = tmp_path / "token.key"
    key.write_text("11" * 32 + "\n")
    pep = tmp_path / "pepper"
    pep.write_text("22" * 32 + "\n")
    a = ServerProcess(tmp_path / "a", extra_args=["--token-key-file", str(key), "--pepper-file", str(pep)], name="a").start()
    try:
        assert not (tmp_path / "a" / "wm.db.token-key").exists()
        acct = new_account()
        c = make_client(a.url, account=acct)
        for i in range(3):
            c.create_organization(Alias=f"k{i}{uuid.uuid4().hex[:8]}")
        tok = c.list_organizations(MaxResults=1)["NextToken"]
        assert a.stop() == 0
        # Restart A with the same key: the token continues.
        a.start()
        c = make_client(a.url, account=acct)
        assert len(c.list_organizations(MaxResults=5, NextToken=tok)["OrganizationSummaries"]) == 2
    finally:
        assert a.stop() == 0


def test_acknowledged_writes_survive_sigkill(tmp_path):
    srv = ServerProcess(tmp_path, name="kill9").start()
    acct = new_account()
    org = make_pat_org(srv.url, account=acct, users=("kim",))
    t = org.users["kim"].create_pat(name="durable")
    c = make_client(srv.url, account=acct)
    uid = c.create_user(OrganizationId=org.org_id, Name="lastwrite", DisplayName="L")["UserId"]
    srv.proc.kill()  # no graceful shutdown
    srv.proc.wait(10)
    srv.start()
    try:
        c = make_client(srv.url, account=acct)
        assert c.describe_user(OrganizationId=org.org_id, UserId=uid)["Name"] == "lastwrite"
        assert verify(srv.url, org.org_id, "kim", t["Token"]).status == 200
    finally:
        assert srv.stop() == 0


def _advance_clock(url: str, seconds: int) -> None:
    req = urllib.request.Request(
        url + "/_workmail-pat/clock",
        data=json.dumps({"AdvanceSeconds": seconds}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_date_last_used_is_written_within_a_second_and_on_shutdown(tmp_path):
    """Issue 14: a token's first use is visible at once; later moves of DateLastUsed are written off the request
    path, at least once a second, and the ones still queued when the server stops are written before it exits."""
    srv = ServerProcess(tmp_path, name="touches", extra_args=["--enable-test-api"]).start()
    acct = new_account()
    org = make_pat_org(srv.url, account=acct)
    alice = org.users["alice"]
    pats = [alice.create_pat(name=f"t{i}") for i in range(3)]

    def last_used(client, pat):
        m = client.get_personal_access_token_metadata(
            OrganizationId=org.org_id, PersonalAccessTokenId=pat["PersonalAccessTokenId"]
        )
        return m["DateLastUsed"].timestamp() if "DateLastUsed" in m else None

    for p in pats:
        assert alice.verify(p["Token"]).status == 200
    # The first use: no waiting.
    firsts = [last_used(org.client, p) for p in pats]
    assert all(f is not None for f in firsts), firsts

    # Two hours later (server time) a use moves DateLastUsed again, visible within a second or so.
    _advance_clock(srv.url, 7200)
    assert alice.verify(pats[0]["Token"]).status == 200
    deadline = time.monotonic() + 3
    while last_used(org.client, pats[0]) < firsts[0] + 7200 - 1:
        assert time.monotonic() < deadline, "DateLastUsed did not move within 3 s of a use"
        time.sleep(0.05)

    # Uses right before a stop are not lost.
    for p in pats[1:]:
        assert alice.verify(p["Token"]).status == 200
    assert srv.stop() == 0
    srv.start()
    client = make_client(srv.url, account=acct)
    for p, first in zip(pats[1:], firsts[1:]):
        assert last_used(client, p) >= first + 7200 - 1
    assert srv.stop() == 0
