"""Real IMAP logins with personal access tokens through Dovecot (issue 8).

Starts `workmail-pat serve` on port 0 and Debian's Dovecot (2.3) on loopback high ports with the shipped
contrib/dovecot snippet and Lua passdb, in a temporary directory with its own base_dir (no system service), then logs
in with Python's imaplib (and smtplib on the submission port). Needs Dovecot with IMAP, submission and the Lua auth
plugin (scripts/test.sh installs dovecot-imapd, dovecot-submissiond and dovecot-auth-lua when missing); without them
the module is skipped unless WORKMAIL_PAT_REQUIRE_DOVECOT=1, which scripts/test.sh sets so CI never silently skips.
"""

from __future__ import annotations

import imaplib
import importlib.util
import os
import grp
import pwd
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib" / "dovecot"

# Reuse the Python suite's helpers (server process, orgs, users, tokens) without making tests/python a package or
# clashing with its conftest module name.
_spec = importlib.util.spec_from_file_location("wm_python_helpers", REPO / "tests" / "python" / "conftest.py")
h = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = h  # dataclasses look their module up there
_spec.loader.exec_module(h)

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
LUA_PLUGIN = Path("/usr/lib/dovecot/modules/auth/libauthdb_lua.so")
SUBMISSION = Path("/usr/lib/dovecot/submission")

if not (os.path.exists(DOVECOT) and LUA_PLUGIN.exists() and SUBMISSION.exists()):
    if os.environ.get("WORKMAIL_PAT_REQUIRE_DOVECOT") == "1":
        raise RuntimeError(
            "Dovecot is incomplete: apt-get install dovecot-imapd dovecot-submissiond dovecot-auth-lua"
        )
    pytest.skip("dovecot with the Lua auth plugin is not installed", allow_module_level=True)

# The mail server authenticates to /auth/v1/verify with a shared key (--verifier-key-file), which is what lets the
# server believe the client address Dovecot reports. Test-only: world-readable so every auth process can read it.
VERIFIER_KEY_DIR = Path(tempfile.mkdtemp(prefix="wm-dovecot-key-"))
VERIFIER_KEY_DIR.chmod(0o755)
VERIFIER_KEY_FILE = VERIFIER_KEY_DIR / "verifier-key"
VERIFIER_KEY_FILE.write_text(secrets.token_hex(32) + "\n")
VERIFIER_KEY_FILE.chmod(0o644)

# imaplib has no ID command (RFC 2971); register it so _simple_command accepts it before LOGIN.
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

# What Dovecot answers (RFC 5530 response codes): a wrong credential vs. "the passdb could not decide".
AUTH_FAILED = b"[AUTHENTICATIONFAILED]"
TEMP_FAILURE = b"[UNAVAILABLE]"

# The shipped snippet's placeholders, replaced to point at this test's files and server.
SNIPPET_LUA_PATH = "file=/etc/dovecot/workmail-pat-passdb.lua"
SNIPPET_URL = "WORKMAIL_PAT_URL=http://127.0.0.1:4610"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StubRelay:
    """The smallest SMTP server Dovecot's submission service accepts as its relay: greets, says 250 to everything,
    221 to QUIT."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket):
        with conn, conn.makefile("rb") as lines:
            try:
                conn.sendall(b"220 relay ESMTP\r\n")
                for line in lines:
                    if line.upper().startswith(b"QUIT"):
                        conn.sendall(b"221 bye\r\n")
                        return
                    conn.sendall(b"250 ok\r\n")
            except OSError:
                return

    def close(self):
        self.sock.close()


class Dovecot:
    """One private Dovecot instance: own base_dir, config and log in a temp dir, IMAP on a loopback high port."""

    def __init__(self, verify_url: str, org_id: str | None, extra_env: str = "", extra_conf: str = "",
                 verifier_key_file: Path | None = VERIFIER_KEY_FILE):
        if verifier_key_file is not None:
            extra_env = f" WORKMAIL_PAT_VERIFIER_KEY_FILE={verifier_key_file}{extra_env}"
        # The shipped snippet names no organization (logins by address); a username-only setup adds one.
        if org_id is not None:
            extra_env = f" WORKMAIL_PAT_ORGANIZATION_ID={org_id}{extra_env}"
        # World-traversable: the auth and mail processes run as unprivileged users and must read the Lua script.
        self.dir = Path(tempfile.mkdtemp(prefix="wm-dovecot-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.smtp_port = free_port()
        self.relay = StubRelay()
        self.log = self.dir / "dovecot.log"
        self.proc: subprocess.Popen | None = None
        lua = self.dir / "workmail-pat-passdb.lua"
        shutil.copy(CONTRIB / "workmail-pat-passdb.lua", lua)
        lua.chmod(0o644)

        snippet = (CONTRIB / "2.3" / "90-workmail-pat.conf").read_text()
        for old, new in (
            (SNIPPET_LUA_PATH, f"file={lua}"),
            (SNIPPET_URL, f"WORKMAIL_PAT_URL={verify_url}{extra_env}"),
        ):
            # The test must exercise the shipped file, so a placeholder that moved is a failure, not a skip.
            assert snippet.count(old) == 1, f"contrib/dovecot/2.3/90-workmail-pat.conf no longer contains {old!r}"
            snippet = snippet.replace(old, new)
        (self.dir / "90-workmail-pat.conf").write_text(snippet)

        if os.geteuid() == 0:
            # Debian's package creates these users; mail runs as nobody (a uid Dovecot accepts for mail).
            internal, login = "dovecot", "dovenull"
            mail_uid, mail_gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
            chroot = "login"
        else:
            me = pwd.getpwuid(os.getuid())
            internal = login = me.pw_name
            mail_uid, mail_gid = me.pw_uid, me.pw_gid
            chroot = ""
        home = self.dir / "home"
        home.mkdir()
        os.chown(home, mail_uid, mail_gid)

        (self.dir / "dovecot.conf").write_text(
            f"""# Test instance only; the settings under test come from the shipped snippet included at the end.
instance_name = wm-test-{self.port}
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = imap submission
listen = 127.0.0.1
# Submission connects to its relay once a client has logged in; nothing is sent, so a stub answers.
hostname = localhost
submission_relay_host = 127.0.0.1
submission_relay_port = {self.relay.port}
ssl = no
# Loopback without TLS; a real server keeps the default (no plaintext auth without TLS).
disable_plaintext_auth = no
auth_verbose = yes
# The tests make many failed logins from 127.0.0.1; Dovecot's per-failure delay and per-IP penalty would only slow
# them down. Trusted clients may also forward their client's address (ID x-originating-ip), which the RemoteIp test
# uses.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = {internal}
default_login_user = {login}
mail_location = maildir:~/Maildir
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={home}/%u
}}
service imap-login {{
  chroot = {chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service submission-login {{
  chroot = {chroot}
  inet_listener submission {{
    address = 127.0.0.1
    port = {self.smtp_port}
  }}
}}
!include {self.dir}/90-workmail-pat.conf
{extra_conf}
"""
        )

    def start(self, timeout: float = 20.0) -> "Dovecot":
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "dovecot.stderr", "wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                diagnostics = self.diagnostics()
                self.stop()
                pytest.fail(f"dovecot exited with {self.proc.returncode}:\n{diagnostics}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        diagnostics = self.diagnostics()
        self.stop()
        pytest.fail(f"dovecot did not answer on port {self.port} within {timeout}s:\n{diagnostics}")

    def diagnostics(self) -> str:
        out = []
        for name in ("dovecot.stderr", "dovecot.log"):
            p = self.dir / name
            if p.exists():
                out.append(f"--- {name}\n" + p.read_text("utf-8", "replace")[-6000:])
        return "\n".join(out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.relay.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def login(self, user: str, password: str, client_ip: str | None = None) -> bytes | None:
        """LOGIN over a fresh connection, as if from `client_ip` (default: a fresh random TEST-NET-2 address, which
        also keeps Dovecot's per-IP failure penalty from slowing the suite down). None on success (after selecting
        INBOX, so the mail side works too), else the server's NO text."""
        client_ip = client_ip or f"198.51.100.{secrets.randbelow(254) + 1}"
        with imaplib.IMAP4("127.0.0.1", self.port, timeout=30) as imap:
            # RFC 2971 ID from a login_trusted_networks peer: Dovecot takes this as the client's address.
            typ, _ = imap._simple_command("ID", f'("x-originating-ip" "{client_ip}")')
            assert typ == "OK"
            try:
                imap.login(user, password)
            except imaplib.IMAP4.error as e:
                text = e.args[0] if e.args else b""
                return text if isinstance(text, bytes) else str(text).encode()
            typ, _ = imap.select("INBOX")
            assert typ == "OK", f"logged in as {user} but SELECT INBOX failed:\n{self.diagnostics()}"
            return None

    def smtp_login(self, user: str, password: str) -> tuple[int, bytes]:
        """AUTH PLAIN on the submission port (like a mail client sending mail); the server's (code, text)."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as smtp:
            # XCLIENT from a login_trusted_networks peer: a fresh client address per login (see login()).
            code, _ = smtp.docmd("XCLIENT", f"ADDR=198.51.100.{secrets.randbelow(254) + 1}")
            assert code == 220, code
            smtp.ehlo("client.test")
            try:
                code, text = smtp.login(user, password)
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
            return code, text

    def assert_login_ok(self, user: str, password: str, client_ip: str | None = None):
        err = self.login(user, password, client_ip)
        assert err is None, f"LOGIN {user} refused: {err!r}\n{self.diagnostics()}"

    def assert_login_refused(self, user: str, password: str, code: bytes = AUTH_FAILED):
        err = self.login(user, password)
        assert err is not None, f"LOGIN {user} succeeded but must not"
        assert code in err, f"LOGIN {user}: expected {code!r}, got {err!r}\n{self.diagnostics()}"


# --------------------------------------------------------------------------------------------------------------
# Fixtures: one server, one organization (alice, bob), one Dovecot for it
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    workdir = Path(tempfile.mkdtemp(prefix="wm-dovecot-server-"))
    srv = h.ServerProcess(workdir, name="dovecot-backend",
                          extra_args=["--verifier-key-file", str(VERIFIER_KEY_FILE)]).start()
    yield srv
    rc = srv.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    assert rc == 0, f"server exited with {rc}; stderr:\n{srv.stderr_tail()}"


@pytest.fixture(scope="module")
def org(server):
    return h.make_pat_org(server.url, users=("alice", "bob"))


@pytest.fixture(scope="module")
def dovecot(server, org):
    d = Dovecot(server.url, org.org_id).start()
    yield d
    d.stop()


def token_summary(org, token_id: str) -> dict:
    pages = org.client.get_paginator("list_personal_access_tokens").paginate(OrganizationId=org.org_id)
    for page in pages:
        for t in page["PersonalAccessTokenSummaries"]:
            if t["PersonalAccessTokenId"] == token_id:
                return t
    raise AssertionError(f"token {token_id} not in ListPersonalAccessTokens")


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------
def test_valid_token_logs_in_and_sets_date_last_used(org, dovecot):
    alice = org.users["alice"]
    pat = alice.create_pat("laptop")
    assert "DateLastUsed" not in token_summary(org, pat["PersonalAccessTokenId"])

    dovecot.assert_login_ok("alice", pat["Token"])

    used = token_summary(org, pat["PersonalAccessTokenId"])
    assert "DateLastUsed" in used, used
    assert abs(used["DateLastUsed"].timestamp() - time.time()) < 120, used
    # The email address is a username too.
    dovecot.assert_login_ok(alice.email, pat["Token"])


def test_client_ip_reaches_the_service_as_remote_ip(server, org, dovecot):
    """The Lua passdb passes Dovecot's idea of the client address (here forwarded by a trusted proxy), so the
    service's per-IP accounting and audit log see the mail client, not the mail server."""
    pat = org.users["alice"].create_pat()
    ip = f"203.0.113.{secrets.randbelow(254) + 1}"
    dovecot.assert_login_ok("alice", pat["Token"], client_ip=ip)
    needle = f"remote_ip={ip}"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in server.stderr_tail(200_000).splitlines() if pat["PersonalAccessTokenId"] in l]
        if any("token_used" in l and needle in l for l in lines):
            return
        time.sleep(0.1)
    pytest.fail(f"no token_used event with {needle} in the server log; lines for the token: {lines}")


def test_defect_03_a_mail_server_without_the_verifier_key_is_refused(server, org):
    """The server requires the verifier key: a Dovecot without it (or any other caller) cannot verify tokens, and
    the user sees a temporary failure rather than a wrong password."""
    pat = org.users["alice"].create_pat()
    d = Dovecot(server.url, org.org_id, verifier_key_file=None).start()
    try:
        d.assert_login_refused("alice", pat["Token"], code=TEMP_FAILURE)
    finally:
        d.stop()


def test_wrong_token_and_directory_password_fail(org, dovecot):
    alice = org.users["alice"]
    real = alice.create_pat()["Token"]
    # Same shape, one character changed (so the checksum no longer matches either).
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    dovecot.assert_login_refused("alice", flipped)
    dovecot.assert_login_refused("alice", "wmpat_" + "a" * 46)
    # The directory password is for the web sign-in only, never for mail.
    dovecot.assert_login_refused("alice", alice.password)
    dovecot.assert_login_refused("alice", "")
    dovecot.assert_login_refused("nobody-here", real)
    dovecot.assert_login_ok("alice", real)  # control: the same user and token untouched work


def test_token_of_another_user_fails(org, dovecot):
    bob_pat = org.users["bob"].create_pat()["Token"]
    dovecot.assert_login_refused("alice", bob_pat)
    dovecot.assert_login_ok("bob", bob_pat)


def test_token_of_same_username_in_another_organization_fails(server, dovecot):
    other = h.make_pat_org(server.url, users=("alice",))
    foreign = other.users["alice"].create_pat()["Token"]
    dovecot.assert_login_refused("alice", foreign)


def test_token_without_imap_scope_fails(org, dovecot):
    alice = org.users["alice"]
    smtp_only = alice.create_pat(scopes=["SMTP"])["Token"]
    dovecot.assert_login_refused("alice", smtp_only)
    imap_only = alice.create_pat(scopes=["IMAP"])["Token"]
    dovecot.assert_login_ok("alice", imap_only)


def test_submission_asks_for_the_smtp_scope(org, dovecot):
    """One passdb, a scope per service: submission (SMTP AUTH) needs SMTP, IMAP needs IMAP."""
    alice = org.users["alice"]
    smtp_only = alice.create_pat(scopes=["SMTP"])["Token"]
    imap_only = alice.create_pat(scopes=["IMAP"])["Token"]
    both = alice.create_pat()["Token"]  # default scopes IMAP and SMTP
    assert dovecot.smtp_login("alice", smtp_only)[0] == 235
    assert dovecot.smtp_login("alice", both)[0] == 235
    code, text = dovecot.smtp_login("alice", imap_only)
    assert code == 535, (code, text)
    dovecot.assert_login_refused("alice", smtp_only)
    dovecot.assert_login_ok("alice", imap_only)


def test_deleted_token_stops_working_at_once(org, dovecot):
    """Revocation: with the recommended setting (auth cache off) the very next login after a delete fails, whether
    the user deletes the token or an administrator does through the AWS API."""
    alice = org.users["alice"]
    by_user = alice.create_pat()
    by_admin = alice.create_pat()
    dovecot.assert_login_ok("alice", by_user["Token"])
    dovecot.assert_login_ok("alice", by_admin["Token"])

    r = alice.delete_pat(by_user["PersonalAccessTokenId"])
    assert r.status == 204, r
    dovecot.assert_login_refused("alice", by_user["Token"])

    org.client.delete_personal_access_token(
        OrganizationId=org.org_id, PersonalAccessTokenId=by_admin["PersonalAccessTokenId"]
    )
    dovecot.assert_login_refused("alice", by_admin["Token"])


def test_inactive_pat_configuration_refuses_valid_tokens(org, dovecot):
    alice = org.users["alice"]
    pat = alice.create_pat()["Token"]
    dovecot.assert_login_ok("alice", pat)
    org.put_pat_config(status="INACTIVE")
    try:
        dovecot.assert_login_refused("alice", pat)
    finally:
        org.put_pat_config(status="ACTIVE")
    dovecot.assert_login_ok("alice", pat)


def test_disabled_user_fails(server, dovecot, org):
    carol = org.add_user("carol")
    pat = carol.create_pat()["Token"]
    dovecot.assert_login_ok("carol", pat)
    org.client.deregister_from_work_mail(OrganizationId=org.org_id, EntityId=carol.user_id)
    dovecot.assert_login_refused("carol", pat)


def test_with_the_auth_cache_on_a_deleted_token_lives_until_flush_or_ttl(server, org):
    """Why the snippet turns the auth cache off: with it on, Dovecot answers a repeated login from its cache and a
    deleted token keeps working until `doveadm auth cache flush` or auth_cache_ttl, which the README documents."""
    ttl = 3
    d = Dovecot(server.url, org.org_id, extra_conf=f"auth_cache_size = 10M\nauth_cache_ttl = {ttl} secs\n").start()
    try:
        # One token per user: the cache holds one entry per (service, user).
        alice, bob = org.users["alice"], org.users["bob"]
        flushed, expired = alice.create_pat(), bob.create_pat()
        for user, pat in ((alice, flushed), (bob, expired)):
            d.assert_login_ok(user.name, pat["Token"])
            assert user.delete_pat(pat["PersonalAccessTokenId"]).status == 204
        started = time.monotonic()
        # The risk: both still get in, answered from the cache.
        d.assert_login_ok("alice", flushed["Token"])
        d.assert_login_ok("bob", expired["Token"])

        r = subprocess.run(
            [DOVEADM, "-c", str(d.dir / "dovecot.conf"), "auth", "cache", "flush", "alice"],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r
        d.assert_login_refused("alice", flushed["Token"])
        d.assert_login_ok("bob", expired["Token"])  # only alice was flushed

        time.sleep(max(0.0, ttl + 1 - (time.monotonic() - started)))
        d.assert_login_refused("bob", expired["Token"])
    finally:
        d.stop()


# --------------------------------------------------------------------------------------------------------------
# Fail closed: when workmail-pat cannot answer, logins get a temporary failure, never access
# --------------------------------------------------------------------------------------------------------------
class SilentServer:
    """Accepts TCP connections and never answers: a hung verification service."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def test_unreachable_service_is_a_temporary_failure(org):
    port = free_port()  # nothing listens here
    d = Dovecot(f"http://127.0.0.1:{port}", org.org_id).start()
    try:
        pat = org.users["alice"].create_pat()["Token"]
        d.assert_login_refused("alice", pat, code=TEMP_FAILURE)
    finally:
        d.stop()


def test_hung_service_times_out_as_a_temporary_failure(org):
    silent = SilentServer()
    d = Dovecot(
        f"http://127.0.0.1:{silent.port}", org.org_id, extra_env=" WORKMAIL_PAT_TIMEOUT_MSECS=1000"
    ).start()
    try:
        pat = org.users["alice"].create_pat()["Token"]
        started = time.monotonic()
        d.assert_login_refused("alice", pat, code=TEMP_FAILURE)
        assert time.monotonic() - started < 10, "the verification timeout was not applied"
    finally:
        d.stop()
        silent.close()


def test_a_malformed_organization_id_stops_the_auth_process():
    """A passdb with a broken organization setting must not half-work: the auth process refuses to start, logins are
    refused and the log says why."""
    d = Dovecot("http://127.0.0.1:9", "not-an-org")
    try:
        d.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(d.dir / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Dovecot starts its auth process on the first login, which is what must fail here.
        deadline = time.monotonic() + 20
        while True:
            try:
                err = d.login("alice", "wmpat_" + "a" * 46)
                assert err is not None, "logged in with a malformed organization id"
            except (OSError, imaplib.IMAP4.error):
                pass  # not listening yet, or "* BYE Auth process broken"
            if "WORKMAIL_PAT_ORGANIZATION_ID is not an organization id" in (d.log.read_text() if d.log.exists() else ""):
                break
            assert time.monotonic() < deadline, d.diagnostics()
            time.sleep(0.2)
    finally:
        d.stop()


# --------------------------------------------------------------------------------------------------------------
# One Dovecot for every organization (issue 15): the shipped configuration names no organization
# --------------------------------------------------------------------------------------------------------------
def org_with_domain(url: str, users=("alice",)):
    """An organization with its own verified domain (the server verifies at once) and users registered there."""
    o = h.make_pat_org(url, users=())
    domain = f"mail{secrets.token_hex(6)}.example.com"
    o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=domain)
    o.domain = domain
    for name in users:
        o.add_user(name)
    return o


@pytest.fixture(scope="module")
def shared_dovecot(server):
    d = Dovecot(server.url, None).start()
    yield d
    d.stop()


def test_the_shipped_snippet_names_no_organization():
    for version in ("2.3", "2.4"):
        lines = (CONTRIB / version / "90-workmail-pat.conf").read_text().splitlines()
        settings = [line for line in lines if not line.lstrip().startswith("#")]
        assert not any("ORGANIZATION_ID" in line or "m-0000" in line for line in settings), version


def test_two_organizations_log_in_through_one_dovecot(server, shared_dovecot):
    first = org_with_domain(server.url, users=("alice",))
    second = org_with_domain(server.url, users=("alice", "bob"))
    a1 = first.users["alice"].create_pat()["Token"]
    a2 = second.users["alice"].create_pat()["Token"]
    b2 = second.users["bob"].create_pat()["Token"]
    shared_dovecot.assert_login_ok(f"alice@{first.domain}", a1)
    shared_dovecot.assert_login_ok(f"alice@{second.domain}", a2)
    shared_dovecot.assert_login_ok(f"BOB@{second.domain.upper()}", b2)
    # Same name, other organization's token: refused either way round.
    shared_dovecot.assert_login_refused(f"alice@{first.domain}", a2)
    shared_dovecot.assert_login_refused(f"alice@{second.domain}", a1)
    # A bare username names no organization here.
    shared_dovecot.assert_login_refused("alice", a1)
    # SMTP submission too.
    assert shared_dovecot.smtp_login(f"bob@{second.domain}", b2)[0] == 235


def test_alias_login_and_a_deregistered_domain_stops_logins_at_once(server, shared_dovecot):
    o = org_with_domain(server.url, users=("carol",))
    carol = o.users["carol"]
    extra = f"alias{secrets.token_hex(5)}.example.net"
    o.client.register_mail_domain(OrganizationId=o.org_id, DomainName=extra)
    o.client.create_alias(OrganizationId=o.org_id, EntityId=carol.user_id, Alias=f"c@{extra}")
    token = carol.create_pat()["Token"]
    shared_dovecot.assert_login_ok(f"c@{extra}", token)
    shared_dovecot.assert_login_ok(f"carol@{o.domain}", token)
    # The domain goes (its alias first, as DeregisterMailDomain requires): the very next login by it fails.
    o.client.delete_alias(OrganizationId=o.org_id, EntityId=carol.user_id, Alias=f"c@{extra}")
    o.client.deregister_mail_domain(OrganizationId=o.org_id, DomainName=extra)
    shared_dovecot.assert_login_refused(f"c@{extra}", token)
    # Carol's primary domain deregistered with her (deregistration releases her address): refused at once.
    o.client.deregister_from_work_mail(OrganizationId=o.org_id, EntityId=carol.user_id)
    o.client.deregister_mail_domain(OrganizationId=o.org_id, DomainName=o.domain)
    shared_dovecot.assert_login_refused(f"carol@{o.domain}", token)
