"""The operator's kit (issue 17, item 4): the per-request access log and its levels, the non-blocking log writer,
shell completions, the man page, the systemd unit (checked by `systemd-analyze verify`), and the fixture helpers of
item 3 (`token secret`, `seed` explaining an invalid secret)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import BIN, REPO, ServerProcess, make_client, run_bin, sign_in, unsigned_request, webapp

ACCESS_FIELDS = ("request_id", "client_ip", "method", "path", "status", "duration_ms", "bytes_out")


def start(tmp_path: Path, rust_log: str | None, *args: str, name: str = "kit") -> ServerProcess:
    """A server with `RUST_LOG` set to `rust_log` (unset when None) and JSON logs."""
    old = os.environ.get("RUST_LOG")
    if rust_log is None:
        os.environ.pop("RUST_LOG", None)
    else:
        os.environ["RUST_LOG"] = rust_log
    try:
        return ServerProcess(tmp_path, extra_args=["--log-format", "json", *args], name=name).start()
    finally:
        if old is None:
            os.environ.pop("RUST_LOG", None)
        else:
            os.environ["RUST_LOG"] = old


def drive(url: str) -> dict:
    """One successful AWS call, one AWS error, one web-API error and an unknown path; returns what was made."""
    wm = make_client(url)
    org = wm.create_organization(Alias=f"kit{uuid.uuid4().hex[:10]}")["OrganizationId"]
    assert unsigned_request(url, "ListOrganizations").status == 400  # MissingAuthenticationTokenException
    assert sign_in(url, org, "nobody", "Wrong-Passw0rd").status == 401
    assert webapp(url, "GET", "/no/such/path?secret=shh").status == 404
    return {"org": org}


def records(srv: ServerProcess) -> list[dict]:
    out = []
    for line in srv.stderr_path.read_text("utf-8", "replace").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def access(srv: ServerProcess) -> list[dict]:
    return [r for r in records(srv) if r.get("target") == "workmail_pat::access"]


def test_access_log_at_info_with_the_flag(tmp_path):
    srv = start(tmp_path, "info", "--access-log")
    drive(srv.url)
    assert srv.stop() == 0
    recs = access(srv)
    assert len(recs) >= 4, srv.stderr_tail()
    for r in recs:
        assert r["level"] == "INFO", r
        assert all(k in r["fields"] for k in ACCESS_FIELDS), r
    by_op = {r["fields"].get("operation"): r["fields"] for r in recs}
    ok = by_op["CreateOrganization"]
    assert (ok["method"], ok["path"], ok["status"]) == ("POST", "/", 200), ok
    assert "error_type" not in ok and ok["bytes_in"] > 0 and ok["bytes_out"] > 0 and ok["duration_ms"] >= 0, ok
    aws_err = [r["fields"] for r in recs if r["fields"].get("error_type") == "MissingAuthenticationTokenException"]
    assert aws_err and aws_err[0]["status"] == 400, recs
    web = [r["fields"] for r in recs if r["fields"]["path"] == "/webapp/api/sessions"]
    assert web and web[0]["status"] == 401 and web[0]["error_type"] == "UnauthorizedException", web
    assert "operation" not in web[0], web  # not an AWS API request
    missing = [r["fields"] for r in recs if r["fields"]["path"] == "/no/such/path"]
    assert missing and missing[0]["status"] == 404 and missing[0]["error_type"] == "NotFoundException", recs
    # The query string is never logged (it can carry anything).
    assert "secret=shh" not in srv.stderr_path.read_text()
    # Audit events stay at INFO beside the access log.
    assert any(r["fields"].get("event") == "sign_in" and r["level"] == "INFO" for r in records(srv))
    # The background writer is flushed at exit: the last line written before the process ends is there.
    assert records(srv)[-1]["fields"]["message"] == "shutting down", records(srv)[-1]


def test_no_access_log_at_info_without_the_flag(tmp_path):
    srv = start(tmp_path, "info")
    drive(srv.url)
    assert srv.stop() == 0
    assert access(srv) == [], srv.stderr_tail()
    assert any(r["fields"].get("event") == "sign_in" for r in records(srv)), "audit events stay at INFO"


def test_access_log_at_debug_without_the_flag(tmp_path):
    srv = start(tmp_path, "debug")
    drive(srv.url)
    assert srv.stop() == 0
    recs = access(srv)
    assert len(recs) >= 4 and all(r["level"] == "DEBUG" for r in recs), srv.stderr_tail()
    assert {r["fields"].get("operation") for r in recs} >= {"CreateOrganization"}
    # Selectable on its own target.
    srv = start(tmp_path / "target", "warn,workmail_pat::access=debug", name="target")
    drive(srv.url)
    assert srv.stop() == 0
    assert len(access(srv)) >= 4 and all(r["target"] == "workmail_pat::access" for r in records(srv))


def test_text_format_access_line(tmp_path):
    old = os.environ.get("RUST_LOG")
    os.environ["RUST_LOG"] = "info"
    try:
        srv = ServerProcess(tmp_path, extra_args=["--access-log"], name="text").start()
    finally:
        os.environ.pop("RUST_LOG") if old is None else os.environ.__setitem__("RUST_LOG", old)
    make_client(srv.url).list_organizations()
    assert srv.stop() == 0
    lines = [l for l in srv.stderr_path.read_text().splitlines() if "workmail_pat::access" in l]
    assert lines and re.search(r'operation="ListOrganizations" status=200 .*duration_ms=', lines[0]), lines


def test_a_stalled_log_reader_never_stalls_requests(tmp_path):
    """stderr is a pipe nobody reads: once its 64 KiB buffer is full a blocking writer would stop every request
    that logs. With the non-blocking writer the server keeps answering (excess lines are dropped)."""
    env = dict(os.environ, RUST_LOG="trace")
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--database", "sqlite::memory:", "--log-format", "json",
         "--no-throttle"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline().decode()
        url = re.search(r"listening on (http://\S+)", line).group(1)
        wm = make_client(url)
        started = time.monotonic()
        for _ in range(600):  # several KiB of log per call at trace: far beyond the pipe's buffer
            wm.list_organizations()
        elapsed = time.monotonic() - started
        assert elapsed < 60, f"600 calls took {elapsed:.1f}s"
    finally:
        proc.kill()
        proc.wait(10)


def test_completions_mention_the_subcommands():
    r = run_bin(["completions", "bash"])
    assert r.returncode == 0, r.stderr
    assert "serve" in r.stdout and "--access-log" in r.stdout and "complete -F" in r.stdout
    for shell in ("zsh", "fish"):
        r = run_bin(["completions", shell])
        assert r.returncode == 0 and "serve" in r.stdout, (shell, r.stderr)
    assert run_bin(["completions", "tcsh"]).returncode != 0


def test_man_page_is_roff_with_every_flag():
    r = run_bin(["man"])
    assert r.returncode == 0, r.stderr
    page = r.stdout
    assert page.startswith(".ie") or ".TH workmail-pat 1" in page
    assert ".TH workmail-pat 1" in page
    for flag in ("listen", "access\\-log", "log\\-format", "database", "enable\\-test\\-api", "organization\\-id"):
        assert f"\\-\\-{flag}" in page, flag
    assert '.SH "WORKMAIL\\-PAT SERVE"' in page and '.SH "WORKMAIL\\-PAT TOKEN SECRET"' in page
    if shutil.which("man"):
        # man itself renders it without complaint (groff warnings go to stderr).
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"workmail-pat-{uuid.uuid4().hex}.1"
        path.write_text(page)
        try:
            out = subprocess.run(["man", "-l", "--warnings", str(path)], capture_output=True, text=True,
                                 env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"), timeout=60)
        finally:
            path.unlink()
        assert out.returncode == 0 and "--access-log" in out.stdout, out.stderr[-2000:]


def test_token_secret_is_valid_and_fresh(tmp_path):
    a, b = run_bin(["token", "secret"]), run_bin(["token", "secret"])
    assert a.returncode == 0 and b.returncode == 0, a.stderr
    secret = a.stdout.strip()
    assert re.fullmatch(r"wmpat_[A-Za-z0-9]{46}", secret) and secret != b.stdout.strip()
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "organizations:\n  - alias: fixed\n    pat_configuration: {status: ACTIVE, lifetime_in_days: 30}\n"
        "    users:\n      - name: alice\n        password: Correct-Horse-7\n        email: alice@fixed.awsapps.com\n"
        f"        tokens:\n          - {{name: laptop, secret: \"{secret}\"}}\n"
    )
    r = run_bin(["seed", "--database", f"sqlite:{tmp_path / 'wm.db'}", str(seed)])
    assert r.returncode == 0, r.stderr
    assert secret not in r.stdout  # a fixed secret is not "generated", so not printed


@pytest.mark.parametrize(
    "secret,explains",
    [
        ("wmpat_...", "has 9 characters, a secret has 52"),
        ("ghp_" + "a" * 48, "does not start with wmpat_"),
        ("wmpat_" + "a" * 20 + "-" + "a" * 25, "only the base62 characters"),
        ("wmpat_" + "a" * 46, "not the checksum of the rest"),
    ],
)
def test_seed_explains_an_invalid_secret(tmp_path, secret, explains):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "organizations:\n  - alias: bad\n    users:\n      - name: alice\n        password: Correct-Horse-7\n"
        f"        tokens:\n          - {{name: laptop, secret: \"{secret}\"}}\n"
    )
    r = run_bin(["seed", "--database", f"sqlite:{tmp_path / 'wm.db'}", str(seed)])
    assert r.returncode != 0
    assert explains in r.stderr and "workmail-pat token secret" in r.stderr, r.stderr
    assert 'token "laptop"' in r.stderr


UNIT = REPO / "contrib" / "systemd" / "workmail-pat.service"


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        if os.environ.get("WORKMAIL_PAT_REQUIRE_SYSTEMD_ANALYZE"):
            pytest.fail("systemd-analyze is required (WORKMAIL_PAT_REQUIRE_SYSTEMD_ANALYZE) but not installed")
        pytest.skip("systemd-analyze not installed (Debian package `systemd`; scripts/test.sh installs it)")
    return path


def _verify(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    # The unit names the installed path; point it at the binary under test so `verify` finds an executable.
    unit = tmp_path / "workmail-pat.service"
    unit.write_text(text.replace("/usr/local/bin/workmail-pat", str(Path(BIN).resolve())))
    return subprocess.run([_systemd_analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=120)


def test_systemd_unit_verifies_clean(tmp_path):
    text = UNIT.read_text()
    for setting in ("DynamicUser=yes", "StateDirectory=workmail-pat", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "CapabilityBoundingSet=\n", "ExecStart=/usr/local/bin/workmail-pat serve"):
        assert setting in text, setting
    r = _verify(tmp_path, text)
    # `verify` exits 0 even for unknown keys and bad values (it only warns), so any output is a failure.
    if r.returncode != 0 and "Failed to" in r.stderr and "bus" in r.stderr.lower():
        pytest.skip(f"systemd-analyze cannot run here: {r.stderr.strip()[:300]}")
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr
    # ...and the check can fail: a misspelt hardening key is reported.
    bad = _verify(tmp_path, text.replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes"))
    assert "NoNewPrivilegs" in bad.stderr, bad.stderr


def test_systemd_unit_exposure_is_low(tmp_path):
    """`systemd-analyze security` rates the sandbox (0 best, 10 worst); the hardening keeps it at 2 or below."""
    analyze = _systemd_analyze()
    unit = tmp_path / "workmail-pat.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/workmail-pat", str(Path(BIN).resolve())))
    r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Overall exposure level for workmail-pat.service: ([0-9.]+)", r.stdout)
    if m is None:
        pytest.skip(f"systemd-analyze security --offline is not available here: {r.stderr.strip()[:300]}")
    print(f"systemd-analyze security exposure: {m.group(1)}")
    assert float(m.group(1)) <= 2.0, r.stdout
