"""Issue 12 ("Trust"), the storage defects: database credentials never reach a log (defect 5), a NUL or a lone
surrogate in any string gets the same clean 4xx from both backends (defect 10), and the SQLite database and key
files are private to their owner (defect 11).

PostgreSQL: $WORKMAIL_PAT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432, trust auth, as the Rust tests
use); each test creates and drops its own database with psql.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (
    BIN,
    PASSWORD,
    SESSION_401,
    ServerProcess,
    make_pat_org,
    raw_request,
    run_bin,
    signed_request,
    verify,
    webapp,
)

PG_SERVER = os.environ.get("WORKMAIL_PAT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------
def pg_admin(sql: str):
    psql = shutil.which("psql")
    assert psql, "psql is needed to create test databases"
    r = subprocess.run(
        [psql, f"{PG_SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"cannot run {sql!r} on {PG_SERVER}: {r.stderr}"


@pytest.fixture
def pg_db():
    """A fresh, empty PostgreSQL database name; dropped afterwards (even with connections left)."""
    name = f"wmpat_trust_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_url(db: str, password: str | None = None, query: str = "") -> str:
    """The test server's URL for `db`, with `password` in its userinfo."""
    parts = urllib.parse.urlsplit(PG_SERVER)
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        user = user.split(":", 1)[0] or "postgres"
        netloc = f"{user}:{password}@{host}"
    url = f"{parts.scheme}://{netloc}/{db}"
    return f"{url}?{query}" if query else url


def key_args(tmp_path: Path) -> list[str]:
    return ["--token-key-file", str(tmp_path / "token-key"), "--pepper-file", str(tmp_path / "pepper")]


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(args: list[str], env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=full
    )


class FakePostgres:
    """Speaks just enough of the PostgreSQL protocol to learn the password a client sends: it refuses SSL, asks
    for a cleartext password, records it and refuses the login (so the client gives up at once)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[str] = []
        self.users: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _exact(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _message(self, conn) -> bytes:
        length = int.from_bytes(self._exact(conn, 4), "big")
        return self._exact(conn, length - 4)

    def _handle(self, conn):
        conn.settimeout(10)
        body = self._message(conn)
        if int.from_bytes(body[:4], "big") == 80877103:  # SSLRequest
            conn.sendall(b"N")
            body = self._message(conn)
        fields = body[4:].split(b"\0")
        params = dict(zip(fields[0::2], fields[1::2]))
        self.users.append(params.get(b"user", b"").decode())
        conn.sendall(b"R" + (8).to_bytes(4, "big") + (3).to_bytes(4, "big"))  # AuthenticationCleartextPassword
        try:
            kind = self._exact(conn, 1)
        except (ConnectionError, OSError):
            return
        if kind == b"p":
            self.passwords.append(self._message(conn).rstrip(b"\0").decode("utf-8", "replace"))
        err = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + (len(err) + 4).to_bytes(4, "big") + err)

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                try:
                    self._handle(conn)
                except (ConnectionError, OSError):
                    pass

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def fake_pg():
    f = FakePostgres()
    yield f
    f.close()


def no_pg_env() -> dict:
    """An environment with no libpq password source of the caller's (HOME points at an empty directory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return env


# --------------------------------------------------------------------------------------------------------------
# Defect 5: the database password never reaches a log, and comes from a file or libpq's sources
# --------------------------------------------------------------------------------------------------------------
def test_defect_05_database_password_never_logged(tmp_path, pg_db):
    """A server on a URL with a password (in the userinfo and as ?password=) logs neither, even at debug."""
    pw_user = "UserinfoPw" + secrets.token_hex(8)
    pw_query = "QueryPw" + secrets.token_hex(8)
    db_url = pg_url(pg_db, password=pw_user, query=f"password={pw_query}&application_name=wmpat-trust")
    old = os.environ.get("RUST_LOG")
    os.environ["RUST_LOG"] = "debug"
    try:
        srv = ServerProcess(tmp_path, db_url=db_url, extra_args=key_args(tmp_path), name="pgpw").start()
    finally:
        if old is None:
            del os.environ["RUST_LOG"]
        else:
            os.environ["RUST_LOG"] = old
    try:
        org = make_pat_org(srv.url)
        assert org.users["alice"].session
        # A failing request too (errors are logged with their details).
        r = signed_request(srv.url, "DescribeOrganization", {"OrganizationId": "m-" + "0" * 32})
        assert r.status == 400, r
    finally:
        assert srv.stop() == 0
    stderr = srv.stderr_path.read_text("utf-8", "replace")
    stdout = "\n".join(srv.stdout_lines)
    assert "listening" in stderr, stderr[-2000:]
    assert re.search(r"DEBUG", stderr), "RUST_LOG=debug did not reach the server"
    for pw in (pw_user, pw_query):
        assert pw not in stderr, f"password in the log: {stderr[-3000:]}"
        assert pw not in stdout
    # The URL is still logged, masked, so operators see which database it is.
    assert pg_db in stderr


def test_defect_05_cli_errors_never_print_the_password(tmp_path):
    """Every command's errors and --help show the URL masked."""
    pw = "CliSecret" + secrets.token_hex(8)
    closed = free_port()
    sqlite_file = tmp_path / "src.db"
    sqlite_file.write_bytes(b"")
    bogus = f"mysql://alice:{pw}@127.0.0.1/db"
    dead_pg = f"postgres://postgres:{pw}@127.0.0.1:{closed}/db"
    keys = key_args(tmp_path)
    runs = [
        (["serve", "--listen", "127.0.0.1:0", "--database", bogus, *keys], {}),
        (["serve", "--listen", "127.0.0.1:0", "--database", dead_pg, "--database-timeout", "1", *keys], {}),
        (["token", "create", "--database", bogus, "--organization-id", "m-x", "--user", "u", "--name", "n"], {}),
        (["dump", "--database", bogus], {}),
        (["report", "--database", bogus, "--organization-id", "m-" + "0" * 32], {}),
        (["migrate", "--from", f"sqlite:{sqlite_file}", "--to", bogus, "--quiet"], {}),
        (["migrate", "--from", f"sqlite:{sqlite_file}", "--to", dead_pg, "--quiet"], {}),
        # clap shows environment values in --help unless told not to.
        (["serve", "--help"], {"WORKMAIL_PAT_DATABASE": dead_pg}),
        (["report", "--help"], {"WORKMAIL_PAT_DATABASE": dead_pg}),
    ]
    for args, env in runs:
        r = run_env(args, env, timeout=60)
        out = r.stdout + r.stderr
        assert pw not in out, f"{args}: password printed:\n{out[-3000:]}"
        if "--help" not in args:
            assert r.returncode != 0, f"{args}: {out}"
    # The refusals still say what was wrong, with the URL masked.
    r = run_env(["serve", "--listen", "127.0.0.1:0", "--database", bogus, *keys])
    assert "mysql://alice:***@127.0.0.1/db" in r.stderr, r.stderr


def test_defect_05_password_file_and_libpq_sources(tmp_path, fake_pg):
    """The password sent is the URL's, else --database-password-file's, else PGPASSWORD's, else the libpq
    password file's (only when private to its owner). A fake server that asks for a cleartext password shows
    what is sent."""
    home = tmp_path / "home"
    home.mkdir()
    pw_file = tmp_path / "db-password"
    pw_file.write_text("FilePw-1\n")
    pw_file.chmod(0o600)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(
        "# host:port:db:user:password\n"
        f"otherhost:*:*:*:WrongHost\n"
        f"127.0.0.1:{fake_pg.port}:wmdb:alice:PgPass\\:Pw-3\n"
        "*:*:*:*:Fallback\n"
    )
    pgpass.chmod(0o600)
    base = f"postgres://alice@127.0.0.1:{fake_pg.port}/wmdb"
    cases = [
        # (url, extra args, env, expected password sent or None)
        (f"postgres://alice:UrlPw-0@127.0.0.1:{fake_pg.port}/wmdb", ["--database-password-file", str(pw_file)],
         {"PGPASSWORD": "EnvPw-2"}, "UrlPw-0"),
        (base, ["--database-password-file", str(pw_file)], {"PGPASSWORD": "EnvPw-2"}, "FilePw-1"),
        (base, [], {"WORKMAIL_PAT_DATABASE_PASSWORD_FILE": str(pw_file)}, "FilePw-1"),
        (base, [], {"PGPASSWORD": "EnvPw-2", "PGPASSFILE": str(pgpass)}, "EnvPw-2"),
        (base, [], {"PGPASSFILE": str(pgpass)}, "PgPass:Pw-3"),
    ]
    for url, extra, env, want in cases:
        full = no_pg_env()
        full["HOME"] = str(home)
        full.update(env)
        before = len(fake_pg.passwords)
        r = subprocess.run(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--database", url, "--database-timeout", "2",
             *key_args(tmp_path), *extra],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=full,
        )
        assert r.returncode != 0, r
        sent = fake_pg.passwords[before:]
        assert sent and set(sent) == {want}, f"{url} {extra} {env}: sent {sent}; stderr:\n{r.stderr[-2000:]}"
        assert want not in r.stdout + r.stderr, f"password printed: {r.stderr[-2000:]}"
    # A password file that others can read is ignored with a warning, as libpq does.
    pgpass.chmod(0o644)
    full = no_pg_env()
    full.update({"HOME": str(home), "PGPASSFILE": str(pgpass)})
    before = len(fake_pg.passwords)
    r = subprocess.run(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--database", base, "--database-timeout", "2",
         *key_args(tmp_path)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=full,
    )
    assert r.returncode != 0
    assert fake_pg.passwords[before:] == [], fake_pg.passwords
    warns = [line for line in r.stderr.splitlines() if "WARN" in line and str(pgpass) in line]
    assert warns and "0644" in warns[0], r.stderr


def test_defect_05_server_starts_with_password_from_file_or_env(tmp_path, pg_db):
    """Against the real PostgreSQL (trust auth: any password is accepted): a server given its password by file or
    by PGPASSWORD starts and serves."""
    pw_file = tmp_path / "pw"
    pw_file.write_text("AnyPassword\n")
    pw_file.chmod(0o600)
    for name, extra, env in [
        ("file", ["--database-password-file", str(pw_file)], {}),
        ("env", [], {"PGPASSWORD": "AnyPassword"}),
    ]:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            srv = ServerProcess(
                tmp_path / name, db_url=pg_url(pg_db), extra_args=[*key_args(tmp_path), *extra], name=name
            ).start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            r = signed_request(srv.url, "ListOrganizations", {})
            assert r.status == 200, r
        finally:
            assert srv.stop() == 0


# --------------------------------------------------------------------------------------------------------------
# Defect 10: NUL characters and lone surrogates get the same clean 4xx from both backends
# --------------------------------------------------------------------------------------------------------------
def _answer(r, org_id: str) -> tuple:
    """What must be identical across backends: status, error type and message (ids normalised)."""
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k in ("__type", "Message", "message", "Users", "NextToken")}
    text = json.dumps(doc, sort_keys=True).replace(org_id, "ORG")
    return (r.status, text)


def _nul_requests(url: str) -> dict[str, tuple]:
    """The named requests with NUL characters and lone surrogates, against a fresh organization of `url`."""
    org = make_pat_org(url, users=("alice",))
    o = org.org_id
    uid = org.users["alice"].user_id
    answers: dict[str, tuple] = {}

    def aws(op, body):
        return signed_request(url, op, body, account=org.account)

    def rec(name, r, expect_status=None):
        assert r.status < 500, f"{name}: {r!r}"
        if expect_status is not None:
            assert r.status == expect_status, f"{name}: {r!r}"
        answers[name] = _answer(r, o)

    # Sign-in, JSON API: the uniform 401.
    for name, org_id, user in [
        ("signin-org-nul", o + "\0", "alice"),
        ("signin-org-only-nul", "\0", "alice"),
        ("signin-user-nul", o, "alice\0"),
        ("signin-user-only-nul", o, "\0"),
    ]:
        r = webapp(url, "POST", "/webapp/api/sessions", {"OrganizationId": org_id, "Username": user, "Password": PASSWORD})
        rec(name, r, 401)
        assert r.json() == SESSION_401, r
    # Sign-in, web form: the same refusal page.
    for name, org_id, user in [("form-org-nul", o + "\0", "alice"), ("form-user-nul", o, "al\0ice")]:
        body = urllib.parse.urlencode({"organization_id": org_id, "username": user, "password": PASSWORD})
        r = raw_request(
            url, "POST", "/webapp/sign-in", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert r.status == 401, f"{name}: {r!r}"
        answers[name] = (r.status,)
    # Mail-server verification: the uniform 401.
    for name, org_id, user in [("verify-org-nul", o + "\0", "alice"), ("verify-user-nul", o, "alice\0")]:
        rec(name, verify(url, org_id, user, "wmpat_" + "A" * 40), 401)
    # AWS API: free-text attributes refuse NUL with a modelled error naming the member.
    r = aws("CreateUser", {"OrganizationId": o, "Name": "bob", "DisplayName": "Bob\0Smith", "Password": PASSWORD}
    )
    rec("createuser-displayname-nul", r, 400)
    assert r.json()["__type"] == "InvalidParameterException" and "DisplayName" in r.json()["Message"], r
    assert "Bob" not in r.json()["Message"]
    for field in ("FirstName", "LastName"):
        r = aws("CreateUser",
            {"OrganizationId": o, "Name": "bob", "DisplayName": "Bob", "Password": PASSWORD, field: "x\0"},
        )
        rec(f"createuser-{field}-nul", r, 400)
    for field in ("City", "DisplayName", "Street", "Office", "Initials", "Telephone", "ZipCode", "Country",
                  "Company", "Department", "JobTitle"):
        r = aws("UpdateUser", {"OrganizationId": o, "UserId": uid, field: "Zu\0rich"})
        rec(f"updateuser-{field}-nul", r, 400)
        doc = r.json()
        assert doc["__type"] == "InvalidParameterException" and f"'{field}'" in doc["Message"], r
        assert "Zu" not in doc["Message"]
    # Members without a pattern that name an entity: not found, like any unknown name.
    r = aws("ResetPassword", {"OrganizationId": o, "UserId": "alice\0" + "x" * 12, "Password": PASSWORD})
    rec("resetpassword-userid-nul", r, 400)
    assert r.json()["__type"] == "EntityNotFoundException", r
    # Prefix filters: a NUL can match nothing.
    for field in ("UsernamePrefix", "DisplayNamePrefix", "PrimaryEmailPrefix"):
        r = aws("ListUsers", {"OrganizationId": o, "Filters": {field: "al\0"}})
        rec(f"listusers-{field}-nul", r, 200)
        assert r.json()["Users"] == [], r
    # Members with a pattern that excludes control characters: the modelled validation error.
    for op, body, member in [
        ("DescribeUser", {"OrganizationId": o, "UserId": "alice\0"}, "UserId"),
        ("DescribeOrganization", {"OrganizationId": o[:-1] + "\0"}, "OrganizationId"),
        ("CreateOrganization", {"Alias": "a\0b"}, "Alias"),
    ]:
        r = aws(op, body)
        rec(f"{op}-nul", r, 400)
        assert r.json()["__type"] == "InvalidParameterException" and member in r.json()["Message"], r
    # Lone surrogates cannot be decoded into a string at all: a clean 4xx wherever JSON is read.
    for name, path, raw in [
        ("surrogate-signin", "/webapp/api/sessions",
         '{"OrganizationId": "%s", "Username": "al\\ud800ice", "Password": "x"}' % o),
        ("surrogate-signin-org", "/webapp/api/sessions",
         '{"OrganizationId": "\\udfff", "Username": "alice", "Password": "x"}'),
        ("surrogate-verify", "/auth/v1/verify",
         '{"OrganizationId": "%s", "Username": "\\ud800", "Token": "wmpat_AAAA"}' % o),
    ]:
        r = raw_request(url, "POST", path, raw, {"Content-Type": "application/json"})
        assert 400 <= r.status < 500, f"{name}: {r!r}"
        answers[name] = _answer(r, o)
    for name, op, raw in [
        ("surrogate-createuser", "CreateUser",
         '{"OrganizationId": "%s", "Name": "bob", "DisplayName": "B\\ud800", "Password": "%s"}' % (o, PASSWORD)),
        ("surrogate-updateuser", "UpdateUser", '{"OrganizationId": "%s", "UserId": "%s", "City": "\\udc00"}' % (o, uid)),
        ("surrogate-listusers", "ListUsers", '{"OrganizationId": "%s", "Filters": {"UsernamePrefix": "\\ud800"}}' % o),
    ]:
        r = aws(op, raw)
        rec(name, r)
        assert 400 <= r.status < 500, f"{name}: {r!r}"
    # The user is untouched and still signs in.
    r = aws("DescribeUser", {"OrganizationId": o, "UserId": uid})
    assert r.status == 200 and r.json()["DisplayName"] == "alice display" and "City" not in r.json(), r
    r = webapp(url, "POST", "/webapp/api/sessions", {"OrganizationId": o, "Username": "alice", "Password": PASSWORD})
    assert r.status == 200, r
    return answers


def test_defect_10_nul_and_lone_surrogates_same_4xx_on_both_backends(tmp_path, pg_db):
    sqlite_srv = ServerProcess(tmp_path / "sqlite", name="sqlite").start()
    pg_srv = ServerProcess(
        tmp_path / "pg", db_url=pg_url(pg_db), extra_args=key_args(tmp_path), name="postgres"
    ).start()
    try:
        on_pg = _nul_requests(pg_srv.url)
        on_sqlite = _nul_requests(sqlite_srv.url)
    finally:
        assert sqlite_srv.stop() == 0
        assert pg_srv.stop() == 0
    assert on_sqlite.keys() == on_pg.keys()
    differ = {k: (on_sqlite[k], on_pg[k]) for k in on_sqlite if on_sqlite[k] != on_pg[k]}
    assert not differ, differ
    for srv in (sqlite_srv, pg_srv):
        log = srv.stderr_path.read_text("utf-8", "replace")
        assert "InternalFailure" not in log and "storage backend error" not in log, log[-3000:]


# --------------------------------------------------------------------------------------------------------------
# Defect 11: the SQLite database, its -wal/-shm files and the key files are 0600
# --------------------------------------------------------------------------------------------------------------
def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_defect_11_sqlite_and_key_files_are_private(tmp_path):
    old = os.umask(0o022)  # the common default, under which SQLite creates 0644 files
    try:
        srv = ServerProcess(tmp_path / "fresh", name="fresh").start()
    finally:
        os.umask(old)
    try:
        make_pat_org(srv.url)  # writes: the -wal file is in use
        db = srv.db_path
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.token-key"), Path(f"{db}.pepper")]
        for f in files:
            assert f.exists(), f
            assert _mode(f) == 0o600, f"{f.name}: {oct(_mode(f))}"
    finally:
        assert srv.stop() == 0
    log = srv.stderr_path.read_text("utf-8", "replace")
    assert "WARN" not in log, log
    # The CLI's own database creation too.
    seed_db = tmp_path / "seeded.db"
    seed_file = tmp_path / "seed.yaml"
    seed_file.write_text("organizations: []\n")
    os.umask(0o022)
    try:
        r = run_bin(["seed", "--database", f"sqlite:{seed_db}", str(seed_file)])
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    for f in [seed_db, Path(f"{seed_db}.token-key"), Path(f"{seed_db}.pepper")]:
        assert _mode(f) == 0o600, f"{f.name}: {oct(_mode(f))}"


def test_defect_11_existing_readable_files_work_and_warn(tmp_path):
    """A database and key files created 0644 by an older version: the server still starts, and says so."""
    work = tmp_path / "old"
    srv = ServerProcess(work, name="first").start()
    make_pat_org(srv.url)
    assert srv.stop() == 0
    db = srv.db_path
    loose = [db, Path(f"{db}.token-key"), Path(f"{db}.pepper")]
    for f in loose:
        f.chmod(0o644)
    srv2 = ServerProcess(work, db_path=db, name="second").start()
    try:
        r = signed_request(srv2.url, "ListOrganizations", {})
        assert r.status == 200, r
    finally:
        assert srv2.stop() == 0
    log = srv2.stderr_path.read_text("utf-8", "replace")
    warns = [line for line in log.splitlines() if "WARN" in line]
    for f in loose:
        assert any(str(f) in w and "0644" in w for w in warns), f"no WARN for {f}:\n{log[-3000:]}"
    for f in loose:
        assert _mode(f) == 0o644, "the file's mode was changed behind the operator's back"
