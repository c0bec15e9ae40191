"""Shared fixtures and helpers for the end-to-end suite.

Every test drives the real `workmail-pat` binary over a real TCP socket, with boto3, the AWS CLI, or raw HTTP
requests (signed with botocore's own SigV4 signer where the SDK refuses to send an input).

Binary: $WORKMAIL_PAT_BIN, else <repo>/target/debug/workmail-pat.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("WORKMAIL_PAT_BIN") or str(REPO / "target" / "debug" / "workmail-pat")

JSON_CT = "application/x-amz-json-1.1"
REGION = "us-east-1"
PASSWORD = "Passw0rd!Aa"
IDC_INSTANCE_ARN = "arn:aws:sso:::instance/ssoins-1111111111111111"
IDC_APPLICATION_ARN = "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"
VERIFY_401 = {"__type": "UnauthorizedException", "Message": "Invalid credentials"}
SESSION_401 = {"__type": "UnauthorizedException", "Message": "Invalid organization, username or password"}
ORG_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PAT_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SECRET_RE = re.compile(r"^wmpat_[A-Za-z0-9]+$")

# Keep the user's AWS configuration out of every client this process builds.
_AWS_SANDBOX = tempfile.mkdtemp(prefix="wm-aws-home-")
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.path.join(_AWS_SANDBOX, "config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(_AWS_SANDBOX, "credentials")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


# --------------------------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------------------------
_SERVE_HELP: dict[str, str] = {}


def _serve_supports(flag: str) -> bool:
    """Whether the binary under test knows `flag` (so the suite can also run against an older build, to show that
    a new test fails there for the defect it guards rather than for an unknown flag)."""
    if BIN not in _SERVE_HELP:
        try:
            out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            out = ""
        _SERVE_HELP[BIN] = out
    return flag in _SERVE_HELP[BIN]


class ServerProcess:
    """One `workmail-pat serve` child process."""

    LISTEN_RE = re.compile(r"listening on (http://\S+)")

    def __init__(
        self,
        workdir: Path,
        db_path: Path | None = None,
        extra_args: Iterable[str] = (),
        name="server",
        listen: str = "127.0.0.1:0",
        db_url: str | None = None,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path or (self.workdir / "wm.db")
        self.db_url = db_url or f"sqlite:{self.db_path}"
        self.listen = listen
        self.extra_args = list(extra_args)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.stdout_lines: list[str] = []
        self.stderr_path = self.workdir / f"{name}.stderr.log"
        self._starts = 0

    @property
    def args(self) -> list[str]:
        extra = list(self.extra_args)
        # The suite makes thousands of deliberately failed sign-ins and verifications from 127.0.0.1; the failure
        # limits get their own server in test_throttling.py, so the shared servers run with them out of the way.
        if not any(a.startswith("--user-failures") or a.startswith("--ip-failures") for a in extra):
            extra += ["--user-failures", "1000000", "--ip-failures", "1000000"]
        # Likewise the budget of unverified (bad-signature) AWS API requests per address: the SigV4 suites send
        # hundreds of deliberately broken signatures from 127.0.0.1.
        if not any(a.startswith("--api-unverified") for a in extra) and _serve_supports("--api-unverified-rate"):
            extra += ["--api-unverified-rate", "1000000", "--api-unverified-burst", "1000000"]
        return [BIN, "serve", "--listen", self.listen, "--database", self.db_url, *extra]

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        if not os.path.exists(BIN):
            pytest.fail(f"server binary not found: {BIN} (run `cargo build` or set WORKMAIL_PAT_BIN)")
        self._starts += 1
        self.stdout_lines = []
        stderr = open(self.stderr_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=self.workdir,
            env=env,
        )
        stderr.close()
        lines: queue.Queue = queue.Queue()

        def pump(stream, sink):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                sink.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(self.proc.stdout, self.stdout_lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"{self.name}: no 'listening on' line within {timeout}s; stderr:\n{self.stderr_tail()}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(5)
                pytest.fail(
                    f"{self.name}: exited with {self.proc.returncode} before listening; stderr:\n{self.stderr_tail()}"
                )
            m = self.LISTEN_RE.search(line)
            if m:
                self.url = m.group(1).rstrip("/")
                self.port = int(self.url.rsplit(":", 1)[1])
                return self

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")[-n:]
        except OSError:
            return "<no stderr>"

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0, settle: float = 0.3) -> int:
        """Send `sig`, wait; returns the exit code. Fails the test if it does not exit within `timeout`.
        `settle`: seconds to wait first, so that a test not about start-up races doesn't signal a process that
        printed its listening line a moment ago (test_signal_right_after_listening_line covers that with 0)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode
        if settle:
            time.sleep(settle)
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name}: did not exit within {timeout}s of {sig!r}; stderr:\n{self.stderr_tail()}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared accept-any server (file database). Tests isolate themselves by using a fresh account id."""
    srv = ServerProcess(tmp_path_factory.mktemp("server"), name="main").start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exited with {rc} after SIGTERM; stderr:\n{srv.stderr_tail()}"


@pytest.fixture(scope="session")
def url(server) -> str:
    return server.url


# --------------------------------------------------------------------------------------------------------------
# boto3 clients
# --------------------------------------------------------------------------------------------------------------
_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()


def new_account() -> str:
    """A random 12-digit account id (accept-any mode: the access key id is the account)."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def make_client(
    url: str,
    account: str | None = None,
    region: str = REGION,
    access_key: str | None = None,
    secret: str = "dummy-secret-key",
    max_attempts: int = 1,
    retry_mode: str = "standard",
):
    ak = access_key or account or "AKIDNOTANACCOUNT"
    cfg = Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=60,
        parameter_validation=True,
    )
    with _SESSION_LOCK:
        return _SESSION.client(
            "workmail",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=ak,
            aws_secret_access_key=secret,
            config=cfg,
        )


@pytest.fixture
def acct() -> str:
    return new_account()


@pytest.fixture
def wm(url, acct):
    """A boto3 WorkMail client on a fresh account of the shared server."""
    return make_client(url, account=acct)


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def expect_error(exc_cls, fn: Callable, *args, message: str | None = None, **kwargs) -> ClientError:
    """Call fn and require the modelled exception class `exc_cls` (e.g. client.exceptions.X)."""
    with pytest.raises(exc_cls) as ei:
        fn(*args, **kwargs)
    err = ei.value
    assert err.response["ResponseMetadata"].get("HTTPStatusCode") == 400, err.response
    assert err.response["ResponseMetadata"].get("RequestId"), "error response without x-amzn-RequestId"
    code = err.response["Error"]["Code"]
    hdrs = err.response["ResponseMetadata"].get("HTTPHeaders", {})
    assert hdrs.get("x-amzn-errortype") == code, f"X-Amzn-ErrorType {hdrs.get('x-amzn-errortype')!r} != {code!r}"
    assert hdrs.get("content-type") == JSON_CT, hdrs
    # Modelled errors carry "Message" (capital M), which botocore copies into the top-level modelled member.
    assert err.response.get("Message"), f"modelled error without a 'Message' member: {err.response}"
    if message is not None:
        assert err.response["Error"]["Message"] == message
    return err


# --------------------------------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def error_type(self) -> str | None:
        try:
            doc = self.json()
        except ValueError:
            return None
        return doc.get("__type") if isinstance(doc, dict) else None

    def __repr__(self):
        return f"RawResponse(status={self.status}, headers={self.headers}, body={self.body[:600]!r})"


def raw_request(
    url: str, method: str = "POST", path: str = "/", body: bytes | str | None = b"", headers=None, timeout=30
) -> RawResponse:
    """Send one HTTP request with exactly these headers (plus Host/Content-Length from http.client)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (e.g. 413 on Content-Length) and close before a large body is fully sent;
            # its answer is still waiting in the socket.
            if conn.sock is None:
                raise
            resp = http.client.HTTPResponse(conn.sock, method=method)
            resp.begin()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        r = RawResponse(resp.status, hdrs, data)
    finally:
        conn.close()
    assert r.status < 500, f"server answered a 5xx: {r!r}"
    return r


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def sign_headers(
    url: str,
    target: str | None,
    body: bytes,
    access_key: str = "AKIDEXAMPLE",
    secret: str = "dummy-secret-key",
    region: str = REGION,
    service: str = "workmail",
    content_type: str | None = JSON_CT,
    sign_time: _dt.datetime | None = None,
    unsigned_headers: Iterable[str] = (),
    extra_headers: dict | None = None,
) -> dict[str, str]:
    """SigV4-sign a POST / like botocore does and return the headers to send."""
    hdrs = {}
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    if target is not None:
        hdrs["X-Amz-Target"] = target
    hdrs.update(extra_headers or {})
    req = AWSRequest(method="POST", url=url.rstrip("/") + "/", data=body, headers=hdrs)
    req.headers["Host"] = urllib.parse.urlsplit(url).netloc

    skip = {h.lower() for h in unsigned_headers}

    class _Signer(SigV4Auth):
        def headers_to_sign(self, request):
            m = super().headers_to_sign(request)
            for h in skip:
                if h in m:
                    del m[h]
            return m

    signer = _Signer(Credentials(access_key, secret), service, region)
    if sign_time is not None:
        orig = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda remove_tzinfo=True: sign_time.replace(tzinfo=None)
        try:
            signer.add_auth(req)
        finally:
            botocore.auth.get_current_datetime = orig
    else:
        signer.add_auth(req)
    return dict(req.headers.items())


def signed_request(
    url: str,
    operation: str | None = None,
    body: Any = None,
    *,
    target: str | None = None,
    access_key: str = "AKIDEXAMPLE",
    account: str | None = None,
    secret: str = "dummy-secret-key",
    region: str = REGION,
    service: str = "workmail",
    content_type: str | None = JSON_CT,
    sign_time: _dt.datetime | None = None,
    unsigned_headers: Iterable[str] = (),
    mutate: Callable[[dict, bytes], tuple[dict, bytes]] | None = None,
) -> RawResponse:
    """A SigV4-signed awsJson request. `operation` sets `X-Amz-Target: WorkMailService.<operation>`;
    `target` sets the header verbatim. `body` may be a dict (JSON-encoded), str or bytes. `mutate` may alter the
    headers and body after signing."""
    if target is None and operation is not None:
        target = f"WorkMailService.{operation}"
    data = _body_bytes({} if body is None else body)
    hdrs = sign_headers(
        url,
        target,
        data,
        access_key=account or access_key,
        secret=secret,
        region=region,
        service=service,
        content_type=content_type,
        sign_time=sign_time,
        unsigned_headers=unsigned_headers,
    )
    if mutate is not None:
        hdrs, data = mutate(hdrs, data)
    return raw_request(url, "POST", "/", data, hdrs)


def unsigned_request(url: str, operation: str | None, body: Any = None, headers=None) -> RawResponse:
    hdrs = {"Content-Type": JSON_CT}
    if operation is not None:
        hdrs["X-Amz-Target"] = f"WorkMailService.{operation}"
    hdrs.update(headers or {})
    return raw_request(url, "POST", "/", _body_bytes({} if body is None else body), hdrs)


def assert_modelled_error(r: RawResponse, type_name: str, status: int = 400) -> dict:
    """A modelled WorkMail error: HTTP 400, {"__type", "Message"}, X-Amzn-ErrorType == __type, request id."""
    assert r.status == status, r
    doc = r.json()
    assert doc.get("__type") == type_name, r
    assert isinstance(doc.get("Message"), str) and doc["Message"], r
    assert r.header("x-amzn-errortype") == type_name, r
    assert r.header("x-amzn-requestid"), r
    return doc


def assert_framework_error(r: RawResponse, type_name: str, status: int = 400) -> dict:
    """A protocol-level error: HTTP 400, {"__type", "message"} (lowercase)."""
    assert r.status == status, r
    doc = r.json()
    assert doc.get("__type") == type_name, r
    assert isinstance(doc.get("message"), str) and doc["message"], r
    assert r.header("x-amzn-requestid"), r
    return doc


def find_nulls(doc: Any, path="$") -> list[str]:
    out = []
    if doc is None:
        out.append(path)
    elif isinstance(doc, dict):
        for k, v in doc.items():
            out += find_nulls(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += find_nulls(v, f"{path}[{i}]")
    return out


def assert_epoch_ms(value: Any, name: str = "timestamp"):
    """An awsJson timestamp: a JSON number of epoch seconds with at most millisecond precision, near now."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{name} is not a number: {value!r}"
    ms = value * 1000
    assert abs(ms - round(ms)) < 1e-3, f"{name} has more than millisecond precision: {value!r}"
    assert 1.7e9 < value < 4.2e9, f"{name} not plausible epoch seconds: {value!r}"


# --------------------------------------------------------------------------------------------------------------
# Self-service web API
# --------------------------------------------------------------------------------------------------------------
def webapp(url: str, method: str, path: str, body: Any = None, bearer: str | None = None, headers=None) -> RawResponse:
    hdrs = {}
    data = b""
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        hdrs["Content-Type"] = "application/json"
    if bearer is not None:
        hdrs["Authorization"] = f"Bearer {bearer}"
    hdrs.update(headers or {})
    return raw_request(url, method, path, data, hdrs)


def sign_in(url: str, org_id: str, username: str, password: str) -> RawResponse:
    return webapp(
        url, "POST", "/webapp/api/sessions", {"OrganizationId": org_id, "Username": username, "Password": password}
    )


def verify(url: str, org_id: str, username: str, token: str, scope: str | None = "IMAP", raw_body=None) -> RawResponse:
    """`POST /auth/v1/verify` as a mail server would: for IMAP unless `scope` says otherwise (None: no Scope)."""
    body = {"OrganizationId": org_id, "Username": username, "Token": token}
    if scope is not None:
        body["Scope"] = scope
    return webapp(url, "POST", "/auth/v1/verify", raw_body if raw_body is not None else body)


def assert_verify_401(r: RawResponse):
    assert r.status == 401, r
    assert r.json() == VERIFY_401, r


def unique_alias(prefix="org") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@dataclass
class PatUser:
    url: str
    org_id: str
    user_id: str
    name: str
    email: str
    password: str
    session: str | None = None

    def login(self) -> str:
        r = sign_in(self.url, self.org_id, self.name, self.password)
        assert r.status == 200, r
        self.session = r.json()["SessionToken"]
        return self.session

    def create_pat(self, name: str | None = None, scopes: list[str] | None = None, expect: int = 201) -> dict:
        if self.session is None:
            self.login()
        body: dict[str, Any] = {"Name": name or f"pat-{uuid.uuid4().hex[:8]}"}
        if scopes is not None:
            body["Scopes"] = scopes
        r = webapp(self.url, "POST", "/webapp/api/personal-access-tokens", body, bearer=self.session)
        assert r.status == expect, r
        return r.json() if r.body else {}

    def list_pats(self) -> RawResponse:
        if self.session is None:
            self.login()
        return webapp(self.url, "GET", "/webapp/api/personal-access-tokens", bearer=self.session)

    def delete_pat(self, pat_id: str) -> RawResponse:
        if self.session is None:
            self.login()
        return webapp(self.url, "DELETE", f"/webapp/api/personal-access-tokens/{pat_id}", bearer=self.session)

    def verify(self, token: str, scope: str | None = "IMAP", username: str | None = None) -> RawResponse:
        return verify(self.url, self.org_id, username or self.name, token, scope)


@dataclass
class PatOrg:
    url: str
    client: Any
    account: str
    org_id: str
    alias: str
    domain: str
    users: dict[str, PatUser] = field(default_factory=dict)

    def add_user(self, name: str, password: str = PASSWORD, register: bool = True, login: bool = True) -> PatUser:
        uid = self.client.create_user(
            OrganizationId=self.org_id, Name=name, DisplayName=f"{name} display", Password=password
        )["UserId"]
        email = f"{name}@{self.domain}"
        if register:
            self.client.register_to_work_mail(OrganizationId=self.org_id, EntityId=uid, Email=email)
        u = PatUser(self.url, self.org_id, uid, name, email, password)
        if register and login:
            u.login()
        self.users[name] = u
        return u

    def put_pat_config(self, status="ACTIVE", lifetime: int | None = 30, mode="IDENTITY_PROVIDER_AND_DIRECTORY"):
        pat_cfg: dict[str, Any] = {"Status": status}
        if lifetime is not None:
            pat_cfg["LifetimeInDays"] = lifetime
        self.client.put_identity_provider_configuration(
            OrganizationId=self.org_id,
            AuthenticationMode=mode,
            IdentityCenterConfiguration={"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": IDC_APPLICATION_ARN},
            PersonalAccessTokenConfiguration=pat_cfg,
        )


def make_org(client, url: str, account: str, alias: str | None = None) -> PatOrg:
    alias = alias or unique_alias()
    org_id = client.create_organization(Alias=alias)["OrganizationId"]
    return PatOrg(url, client, account, org_id, alias, f"{alias}.awsapps.com")


def make_pat_org(
    url: str,
    account: str | None = None,
    users: Iterable[str] = ("alice",),
    lifetime: int | None = 30,
    status: str = "ACTIVE",
    region: str = REGION,
) -> PatOrg:
    """An Active org with ENABLED users (with passwords, signed in) and a PAT configuration."""
    account = account or new_account()
    client = make_client(url, account=account, region=region)
    org = make_org(client, url, account)
    org.put_pat_config(status=status, lifetime=lifetime)
    for name in users:
        org.add_user(name)
    return org


# --------------------------------------------------------------------------------------------------------------
# AWS CLI
# --------------------------------------------------------------------------------------------------------------
def aws_cli_path() -> str:
    cand = Path(sys.executable).parent / "aws"
    if cand.exists():
        return str(cand)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the AWS CLI (`aws`, from awscli in tests/python/requirements.txt) is not installed")
    return found


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def run_aws(
    url: str, args: list[str], account: str | None = None, region: str = REGION, timeout: float = 60
) -> CliResult:
    home = tempfile.mkdtemp(prefix="wm-cli-home-")
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "AWS_ENDPOINT_URL_WORKMAIL": url,
            "AWS_ACCESS_KEY_ID": account or "AKIDNOTANACCOUNT",
            "AWS_SECRET_ACCESS_KEY": "dummy-secret-key",
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": os.path.join(home, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "LC_ALL": "C.UTF-8",
        }
        p = subprocess.run(
            [aws_cli_path(), "workmail", *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CliResult(p.returncode, p.stdout, p.stderr)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_bin(args: list[str], timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd
    )
