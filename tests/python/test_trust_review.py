"""Independent review of the issue-12 fixes: attacks against the attempt limits, around them and across replicas.
Each test drives the real binary over a socket and is named after what it shows. Distinct client addresses are
distinct loopback sources (127.0.0.0/8 is all local)."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse

from conftest import PASSWORD, RawResponse, ServerProcess, make_pat_org


def from_address(url: str, source: str, method: str, path: str, body=None, bearer: str | None = None) -> RawResponse:
    """One request sent from the loopback address `source`."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30, source_address=(source, 0))
    headers = {}
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        r = RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
    assert r.status < 500, r
    return r


def sign_in_from(url, source, org_id, username, password) -> RawResponse:
    return from_address(url, source, "POST", "/webapp/api/sessions",
                        {"OrganizationId": org_id, "Username": username, "Password": password})


def verify_from(url, source, org_id, username, token, scope="IMAP") -> RawResponse:
    return from_address(url, source, "POST", "/auth/v1/verify",
                        {"OrganizationId": org_id, "Username": username, "Token": token, "Scope": scope})


def strangers_exhaust_the_ceiling(fn, addresses=10, per_address=10):
    """`addresses` x `per_address` failures from 127.0.0.2, 127.0.0.3, ...: the default user ceiling (100)."""
    statuses = []
    for a in range(addresses):
        for _ in range(per_address):
            statuses.append(fn(f"127.0.0.{a + 2}").status)
    return statuses


# --------------------------------------------------------------------------------------------------------------
# Lock-out: the user's known-good addresses are only known to the process that saw her succeed
# --------------------------------------------------------------------------------------------------------------
def test_review_replica_that_did_not_see_her_success_locks_her_out_of_sign_in(tmp_path):
    """Two replicas on PostgreSQL. Olga signs in on replica A from her address; strangers then reach the user
    ceiling through replica B. The database knows her address is good (its ceiling is skipped), yet replica B's
    in-memory ceiling refuses her own sign-in from her own address with 429: a stranger locks her out of every
    replica she has not used since it started (and of all of them after a restart or deployment)."""
    from test_trust_store import key_args, pg_admin, pg_url

    name = f"wmpat_review_{os.getpid()}_{int(time.time() * 1000)}"
    pg_admin(f"CREATE DATABASE {name}")
    replicas = []
    try:
        for i in range(2):
            replicas.append(ServerProcess(tmp_path / f"r{i}", db_url=pg_url(name), name=f"replica{i}",
                                          extra_args=key_args(tmp_path) + ["--user-failures", "10"]).start())
        a, b = replicas
        org = make_pat_org(a.url, users=())
        org.add_user("olga", login=False)
        assert sign_in_from(a.url, "127.0.0.1", org.org_id, "olga", PASSWORD).status == 200
        statuses = strangers_exhaust_the_ceiling(
            lambda src: sign_in_from(b.url, src, org.org_id, "olga", "Wrong-Guess-1!"))
        assert set(statuses) <= {401, 429}, statuses
        # Replica A (which saw her succeed) still lets her in.
        assert sign_in_from(a.url, "127.0.0.1", org.org_id, "olga", PASSWORD).status == 200
        r = sign_in_from(b.url, "127.0.0.1", org.org_id, "olga", PASSWORD)
        assert r.status == 200, f"olga locked out of replica B from her own address: {r!r}"
    finally:
        for srv in replicas:
            srv.stop()
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_review_restart_forgets_known_good_addresses_and_strangers_lock_her_out_of_mail(tmp_path):
    """One replica. Her mail client verified her token from 127.0.0.1 before a restart; after it, 100 bad tokens
    from ten stranger addresses make her own token from her own address answer 429 (defect 3's guarantee holds
    only for addresses seen succeeding since the process started)."""
    srv = ServerProcess(tmp_path / "s", name="restart", extra_args=["--user-failures", "10"]).start()
    try:
        org = make_pat_org(srv.url, users=("mia",))
        token = org.users["mia"].create_pat("t")["Token"]
        assert verify_from(srv.url, "127.0.0.1", org.org_id, "mia", token).status == 200
        srv.stop()
        srv.start()
        bad = token[:-1] + ("A" if token[-1] != "A" else "B")
        statuses = strangers_exhaust_the_ceiling(lambda src: verify_from(srv.url, src, org.org_id, "mia", bad))
        assert set(statuses) <= {401, 429}, statuses
        r = verify_from(srv.url, "127.0.0.1", org.org_id, "mia", token)
        assert r.status == 200, f"mia locked out of her mail from her own address after a restart: {r!r}"
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------------------------
# Enumeration: the shared budget of a user's username and email tells which names exist
# --------------------------------------------------------------------------------------------------------------
def test_review_shared_budget_reveals_which_usernames_exist(tmp_path):
    """Ten failures on a username, then one on the matching email address: 429 when the user exists (username and
    email share the resolved user's budget), 401 when she does not (each typed name has its own). An attacker
    learns existence, and the email of a username, from one address with eleven requests per name."""
    srv = ServerProcess(tmp_path / "s", name="enum", extra_args=["--user-failures", "10"]).start()
    try:
        org = make_pat_org(srv.url, users=())
        org.add_user("nora", login=False)

        def probe(name):
            for _ in range(10):
                assert sign_in_from(srv.url, "127.0.0.5", org.org_id, name, "Wrong-Guess-1!").status == 401
            return sign_in_from(srv.url, "127.0.0.5", org.org_id, f"{name}@{org.domain}", "Wrong-Guess-1!").status

        existing, missing = probe("nora"), probe("nobody")
        assert existing == missing, f"existing user -> {existing}, unknown name -> {missing}"
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------------------------
# Lock-out in the default configuration: without --verifier-key-file every mail login comes from the mail server
# --------------------------------------------------------------------------------------------------------------
def test_review_without_a_verifier_key_ten_bad_mail_logins_lock_her_mail(tmp_path):
    """The default configuration (no --verifier-key-file, no --trusted-proxy): every verification counts against
    the mail server's own address, whatever RemoteIp it reports. Ten bad IMAP logins for her by anyone make her
    own phone's login answer 429 for five minutes (the pair (user, mail server) is full; a known-good address
    exempts only from the ceiling). The server starts without a word about it."""
    srv = ServerProcess(tmp_path / "s", name="nokey", extra_args=["--user-failures", "10"]).start()
    try:
        org = make_pat_org(srv.url, users=("hana",))
        token = org.users["hana"].create_pat("phone")["Token"]

        def mail(token, remote_ip):
            return from_address(srv.url, "127.0.0.1", "POST", "/auth/v1/verify",
                                {"OrganizationId": org.org_id, "Username": "hana", "Token": token,
                                 "Scope": "IMAP", "RemoteIp": remote_ip})

        assert mail(token, "198.51.100.7").status == 200
        attacker = [mail("wmpat_" + "x" * 46, "203.0.113.66").status for _ in range(10)]
        assert attacker == [401] * 10, attacker
        r = mail(token, "198.51.100.7")
        assert r.status == 200, f"ten bad logins by a stranger lock her mail: {r!r}"
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------------------------
# Sessions that outlive DeleteOrganization
# --------------------------------------------------------------------------------------------------------------
def test_review_a_sign_in_racing_delete_organization_leaves_no_session(tmp_path):
    """Sign-ins that read the organization as Active just before DeleteOrganization store their session after the
    deletion removed the organization's sessions (the session insert checks the user, not the organization):
    those sessions stay live (403 on every action instead of 401) in an organization that no longer exists."""
    import concurrent.futures
    import threading

    from conftest import sign_in, webapp

    srv = ServerProcess(tmp_path / "s", name="delorg").start()
    try:
        survivors = 0
        for _ in range(3):
            org = make_pat_org(srv.url, users=("alice",))
            barrier = threading.Barrier(17)

            def attempt(i):
                barrier.wait()
                time.sleep(i * 0.004)
                return sign_in(srv.url, org.org_id, "alice", PASSWORD)

            def delete():
                barrier.wait()
                time.sleep(0.02)
                org.client.delete_organization(OrganizationId=org.org_id, DeleteDirectory=True, ForceDelete=True)

            with concurrent.futures.ThreadPoolExecutor(17) as pool:
                futures = [pool.submit(attempt, i) for i in range(16)]
                deleted = pool.submit(delete)
                results = [f.result() for f in futures]
                deleted.result()
            for r in results:
                if r.status == 200:
                    listed = webapp(srv.url, "GET", "/webapp/api/personal-access-tokens",
                                    bearer=r.json()["SessionToken"])
                    survivors += listed.status != 401
        assert survivors == 0, f"{survivors} sessions outlived DeleteOrganization"
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------------------------------
# RemoteIp believed from anyone behind a trusted reverse proxy
# --------------------------------------------------------------------------------------------------------------
def test_review_clients_behind_a_trusted_proxy_cannot_choose_their_remote_ip(tmp_path):
    """--trusted-proxy names both the mail server and the reverse proxy in front of the web page. A client whose
    request the proxy forwards (X-Forwarded-For names him) is not the mail server, yet the RemoteIp in his body is
    believed because the socket peer is trusted: he reports her home address and ten bad tokens lock her mail at
    home (the per-address and ceiling limits never see him)."""
    from conftest import webapp

    srv = ServerProcess(tmp_path / "s", name="proxied",
                        extra_args=["--trusted-proxy", "127.0.0.1", "--user-failures", "10"]).start()
    try:
        org = make_pat_org(srv.url, users=("hana",))
        token = org.users["hana"].create_pat("phone")["Token"]
        home = "198.51.100.7"

        def verify(token, remote_ip, forwarded_for=None):
            headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
            return webapp(srv.url, "POST", "/auth/v1/verify",
                          {"OrganizationId": org.org_id, "Username": "hana", "Token": token, "Scope": "IMAP",
                           "RemoteIp": remote_ip}, headers=headers)

        # The mail server (trusted, talking directly) reports her phone at home.
        assert verify(token, home).status == 200
        # A stranger on the Internet, through the reverse proxy, claims to be at her home.
        attacker = [verify("wmpat_" + "x" * 46, home, forwarded_for="203.0.113.66").status for _ in range(10)]
        assert set(attacker) <= {401, 429}, attacker
        r = verify(token, home)
        assert r.status == 200, f"a proxied client chose RemoteIp and locked her mail at home: {r!r}"
    finally:
        srv.stop()
