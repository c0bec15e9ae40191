"""Run the bundled `workmail-pat` server as a child process and drive its test-support API.

Only the standard library is used here; boto3 is imported lazily by the helpers that call the AWS API.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

BINARY_NAME = "workmail-pat"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
DEFAULT_PASSWORD = "Correct-Horse-7"

# The identity-provider configuration the API requires before a PAT configuration can be stored (any well-formed
# IAM Identity Center ARNs are accepted by the server).
IDC_INSTANCE_ARN = "arn:aws:sso:::instance/ssoins-1111111111111111"
IDC_APPLICATION_ARN = "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"

_LISTENING = re.compile(r"listening on (http://\S+)")
_counter = itertools.count(1)


class WorkMailServerError(RuntimeError):
    """The server could not be started, or a test-support call failed."""


def find_binary() -> str:
    """The `workmail-pat` executable: `$WORKMAIL_PAT_BIN`, else the one this wheel installed next to the Python
    interpreter's scripts, else the first on `PATH`."""
    override = os.environ.get("WORKMAIL_PAT_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise WorkMailServerError(f"WORKMAIL_PAT_BIN={override!r} is not an executable file")
        return override
    exe = BINARY_NAME + (".exe" if sys.platform == "win32" else "")
    candidates = [Path(sysconfig.get_path("scripts")) / exe, Path(sys.executable).parent / exe]
    user_scheme = {"nt": "nt_user", "posix": "posix_user"}.get(os.name)
    if user_scheme and user_scheme in sysconfig.get_scheme_names():
        candidates.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)) / exe)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(BINARY_NAME)
    if found:
        return found
    raise WorkMailServerError(
        f"cannot find the {BINARY_NAME} binary (install the pytest-workmail-pat wheel, or set WORKMAIL_PAT_BIN)"
    )


@dataclass
class WorkMailUser:
    """A registered (ENABLED) user with a password, in an Active organization whose PAT configuration is ACTIVE."""

    server: "WorkMailServer"
    organization_id: str
    user_id: str
    name: str
    password: str
    email: str
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    tokens: list = field(default_factory=list)

    def create_token(self, name: str, scopes: Optional[Sequence[str]] = None) -> dict:
        """Create a personal access token as this user (the self-service web API). Returns the 201 body:
        `PersonalAccessTokenId`, `Token` (the secret), `Name`, `DateCreated`, `ExpiresTime`, `Scopes`."""
        token = self.server.create_token(self.organization_id, self.name, self.password, name, scopes)
        self.tokens.append(token)
        return token

    def use_token(self, token: str, scope: str = "IMAP") -> bool:
        """Sign in with a token as this user, as a mail server would for `scope` (`POST /auth/v1/verify`); True
        when the server accepts it."""
        return self.server.verify_token(self.organization_id, self.name, token, scope)


class WorkMailServer:
    """A `workmail-pat serve` child process on a free loopback port with the test-support API on.

    ``with WorkMailServer() as url:`` starts it and yields its endpoint URL; the object also has helpers:
    :meth:`reset`, :meth:`advance_clock`, :meth:`set_clock`, :meth:`now`, :meth:`create_token`,
    :meth:`create_user`, :meth:`environ`.
    """

    def __init__(
        self,
        binary: Optional[str] = None,
        database: Optional[str] = None,
        seed: Optional[os.PathLike] = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        log_path: Optional[os.PathLike] = None,
    ):
        self.binary = binary or find_binary()
        # In memory by default: nothing left behind, and every server starts empty.
        self.database = database or "sqlite::memory:"
        self.seed = seed
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._log_path = Path(log_path) if log_path else None
        self._log_file = None
        self._tmpdir: Optional[tempfile.TemporaryDirectory] = None
        self.process: Optional[subprocess.Popen] = None
        self.url: Optional[str] = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "WorkMailServer":
        if self.process is not None:
            raise WorkMailServerError("the server is already running")
        if self._log_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="workmail-pat-")
            self._log_path = Path(self._tmpdir.name) / "server.log"
        self._log_file = open(self._log_path, "ab")
        args = [self.binary, "serve", "--listen", "127.0.0.1:0", "--enable-test-api", "--database", self.database]
        if self.seed is not None:
            args += ["--seed", os.fspath(self.seed)]
        args += self.extra_args
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=env,
            start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which then stops the server itself
        )
        found: list = []
        ready = threading.Event()

        def read_stdout(stream):
            for raw in iter(stream.readline, b""):
                m = _LISTENING.search(raw.decode("utf-8", "replace"))
                if m and not found:
                    found.append(m.group(1))
                    ready.set()
            ready.set()  # EOF: the process exited (or closed stdout)

        threading.Thread(target=read_stdout, args=(self.process.stdout,), daemon=True).start()
        if not ready.wait(self.startup_timeout) or not found:
            try:  # stdout closed: give the process a moment to exit so its code can be reported
                exited = self.process.wait(5) if ready.is_set() else self.process.poll()
            except subprocess.TimeoutExpired:
                exited = None
            self._kill()
            why = (f"exited with code {exited}" if exited is not None
                   else f"did not report `listening on http://...` within {self.startup_timeout:.0f} s")
            self._cleanup()
            raise WorkMailServerError(f"{self.binary} {why}; its log:\n{self.log()}")
        self.url = found[0].rstrip("/")
        return self

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """SIGTERM (a graceful shutdown), then SIGKILL after `timeout` seconds. Returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        code = proc.poll()
        if code is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                code = proc.returncode
        self._cleanup()
        return code

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _cleanup(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        try:
            return self._log_path.read_text("utf-8", "replace") if self._log_path else ""
        except OSError:
            return ""

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
            self._log_path = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ------------------------------------------------------------------ environment
    def environ(self, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> dict:
        """The variables that point boto3 and the AWS CLI at this server with dummy credentials. The server
        (in its default `--auth accept-any` mode) takes a 12-digit access key id as the account id."""
        return {
            "AWS_ENDPOINT_URL_WORKMAIL": self._require_url(),
            "AWS_ACCESS_KEY_ID": account,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION):
        """A boto3 WorkMail client for this server (needs boto3: `pip install pytest-workmail-pat[boto3]`)."""
        import boto3  # noqa: PLC0415 - optional dependency
        from botocore.config import Config  # noqa: PLC0415

        return boto3.client(
            "workmail",
            endpoint_url=self._require_url(),
            region_name=region,
            aws_access_key_id=account,
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    # ------------------------------------------------------------------ test-support API
    def _require_url(self) -> str:
        if not self.url:
            raise WorkMailServerError("the server is not running")
        return self.url

    def request(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None):
        """An HTTP request to the server; returns `(status, parsed JSON body or None)`."""
        data = None if body is None else json.dumps(body).encode()
        # Always JSON, even without a body: the test-support API refuses every change that is not
        # `Content-Type: application/json` (a web page cannot send that cross-origin without a preflight).
        all_headers = {"content-type": "application/json", **(headers or {})}
        req = urllib.request.Request(self._require_url() + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _ok(self, method: str, path: str, body: Any = None, expect: Iterable[int] = (200,)) -> Any:
        status, doc = self.request(method, path, body)
        if status not in tuple(expect):
            raise WorkMailServerError(f"{method} {path} -> HTTP {status}: {doc}")
        return doc

    def health(self) -> dict:
        return self._ok("GET", "/_workmail-pat/health")

    def reset(self, account: Optional[str] = None, region: Optional[str] = None, clock: bool = True) -> None:
        """Forget all state (or one account/region), and (with `clock`) put the clock back to real time."""
        if (account is None) != (region is None):
            raise ValueError("give both account and region, or neither")
        body = None if account is None else {"Account": account, "Region": region}
        self._ok("POST", "/_workmail-pat/reset", body)
        if clock:
            self.reset_clock()

    def now(self) -> float:
        """The server's current time, epoch seconds."""
        return float(self._ok("GET", "/_workmail-pat/clock")["Now"])

    def advance_clock(self, seconds: float) -> float:
        """Move server time forward (or back, if negative). Token expiry, `DateLastUsed`, NextToken and session
        expiry follow it. Returns the new server time."""
        return float(self._ok("POST", "/_workmail-pat/clock", {"AdvanceSeconds": seconds})["Now"])

    def set_clock(self, epoch_seconds: float) -> float:
        """Set server time to an absolute instant (epoch seconds)."""
        return float(self._ok("POST", "/_workmail-pat/clock", {"Now": epoch_seconds})["Now"])

    def reset_clock(self) -> None:
        """Put server time back to real time (if it was moved by more than a second)."""
        if abs(self.now() - time.time()) > 1.0:
            self.set_clock(time.time())

    def seed_ids(self, seed: int) -> None:
        """Make generated ids deterministic from now on."""
        self._ok("POST", "/_workmail-pat/seed", {"Seed": seed})

    # ------------------------------------------------------------------ data helpers
    def sign_in(self, organization_id: str, username: str, password: str) -> str:
        """A web-page session for a user (`POST /webapp/api/sessions`); returns the session token."""
        doc = self._ok(
            "POST",
            "/webapp/api/sessions",
            {"OrganizationId": organization_id, "Username": username, "Password": password},
        )
        return doc["SessionToken"]

    def create_token(
        self,
        organization_id: str,
        username: str,
        password: str,
        name: str,
        scopes: Optional[Sequence[str]] = None,
    ) -> dict:
        """Create a personal access token for a user the way the user would (sign in, then
        `POST /webapp/api/personal-access-tokens`). Returns `PersonalAccessTokenId`, `Token` (the secret),
        `Name`, `DateCreated`, `ExpiresTime`, `Scopes`."""
        session = self.sign_in(organization_id, username, password)
        body: dict = {"Name": name}
        if scopes is not None:
            body["Scopes"] = list(scopes)
        status, doc = self.request(
            "POST", "/webapp/api/personal-access-tokens", body, headers={"authorization": f"Bearer {session}"}
        )
        if status != 201:
            raise WorkMailServerError(f"creating token {name!r} for {username!r} -> HTTP {status}: {doc}")
        return doc

    def verify_token(self, organization_id: str, username: str, token: str, scope: str = "IMAP") -> bool:
        """Use a token the way a mail server would (`POST /auth/v1/verify`, for the service `scope`, IMAP by
        default: the server requires one); records `DateLastUsed` on success."""
        body = {"OrganizationId": organization_id, "Username": username, "Token": token, "Scope": scope}
        status, _ = self.request("POST", "/auth/v1/verify", body)
        return status == 200

    def create_organization(
        self,
        alias: Optional[str] = None,
        lifetime_in_days: Optional[int] = 30,
        pat_status: str = "ACTIVE",
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
    ) -> str:
        """An Active organization with a PAT configuration (AWS API through boto3). Returns its id."""
        alias = alias or f"pytest-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
        wm = self.client(account, region)
        org_id = wm.create_organization(Alias=alias)["OrganizationId"]
        pat_cfg: dict = {"Status": pat_status}
        if lifetime_in_days is not None:
            pat_cfg["LifetimeInDays"] = lifetime_in_days
        wm.put_identity_provider_configuration(
            OrganizationId=org_id,
            AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
            IdentityCenterConfiguration={"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": IDC_APPLICATION_ARN},
            PersonalAccessTokenConfiguration=pat_cfg,
        )
        return org_id

    def create_user(
        self,
        name: str = "alice",
        password: str = DEFAULT_PASSWORD,
        organization_id: Optional[str] = None,
        lifetime_in_days: Optional[int] = 30,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
    ) -> WorkMailUser:
        """A registered user with a password, able to create tokens (AWS API through boto3). Without
        `organization_id` a new organization (PAT lifetime `lifetime_in_days`) is created for it."""
        wm = self.client(account, region)
        if organization_id is None:
            organization_id = self.create_organization(lifetime_in_days=lifetime_in_days, account=account,
                                                       region=region)
        domain = wm.describe_organization(OrganizationId=organization_id)["DefaultMailDomain"]
        user_id = wm.create_user(OrganizationId=organization_id, Name=name, DisplayName=name, Password=password)[
            "UserId"
        ]
        email = f"{name}@{domain}"
        wm.register_to_work_mail(OrganizationId=organization_id, EntityId=user_id, Email=email)
        return WorkMailUser(self, organization_id, user_id, name, password, email, account, region)
