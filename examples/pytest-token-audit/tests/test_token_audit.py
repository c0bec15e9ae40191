"""The token-audit script against a real workmail-pat server, through the pytest-workmail-pat fixtures."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

import token_audit
from pytest_workmail_pat import WorkMailServer

DAY = 86400
SCRIPT = Path(__file__).resolve().parent.parent / "token_audit.py"


def run_script(*args):
    """The script as a user runs it: a separate process, configured only by the environment the fixture set."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))


def ids(findings):
    return sorted(f.token_id for f in findings)


def test_fixture_points_boto3_at_this_workers_own_server(workmail_server, workmail_server_session):
    assert workmail_server is workmail_server_session
    assert os.environ["AWS_ENDPOINT_URL_WORKMAIL"] == workmail_server.url
    assert workmail_server.url.startswith("http://127.0.0.1:")
    assert not workmail_server.url.endswith(":4610")  # a random free port, not the default one
    # A plain client, configured by nothing but the environment, reaches it.
    assert "OrganizationSummaries" in boto3.client("workmail").list_organizations()
    # Under pytest-xdist every worker process starts its own server: it is a child of this very process.
    stat = Path(f"/proc/{workmail_server.process.pid}/stat")
    if stat.exists():
        assert int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid()


def test_fresh_tokens_are_reported_as_never_used_until_used(workmail_user, workmail_server):
    laptop = workmail_user.create_token("laptop", ["IMAP"])
    phone = workmail_user.create_token("phone")
    report = token_audit.audit(workmail_user.organization_id)
    assert report.total == 2
    assert report.expired == [] and report.expiring_soon == []
    assert ids(report.never_used) == sorted([laptop["PersonalAccessTokenId"], phone["PersonalAccessTokenId"]])

    assert workmail_user.use_token(laptop["Token"])
    report = token_audit.audit(workmail_user.organization_id)
    assert ids(report.never_used) == [phone["PersonalAccessTokenId"]]
    r = run_script("--organization-id", workmail_user.organization_id)
    assert r.returncode == 0, r.stderr
    assert "2 token(s)" in r.stdout and "NEVER USED: 1" in r.stdout and "alice/phone" in r.stdout


def test_tokens_past_their_lifetime_are_reported_expired(workmail_user, workmail_server):
    # workmail_user's organization gives tokens a 30-day lifetime.
    old = [workmail_user.create_token(f"old-{i}") for i in range(2)]
    assert workmail_user.use_token(old[0]["Token"])
    workmail_server.advance_clock(20 * DAY)
    recent = workmail_user.create_token("recent")  # expires 30 days from server time, i.e. day 50

    workmail_server.advance_clock(11 * DAY)  # day 31: the first two are past their expiry, "recent" is not
    now = workmail_server.now()
    assert not workmail_user.use_token(old[1]["Token"])  # the server refuses them too
    assert workmail_user.use_token(recent["Token"])

    report = token_audit.audit(workmail_user.organization_id, now=now)
    assert report.total == 3
    assert ids(report.expired) == sorted(t["PersonalAccessTokenId"] for t in old)
    assert report.expiring_soon == []
    assert ids(report.never_used) == [old[1]["PersonalAccessTokenId"]]

    r = run_script("--organization-id", workmail_user.organization_id, "--now", str(now), "--json")
    assert r.returncode == 1, r.stderr  # problems found
    doc = json.loads(r.stdout)
    assert sorted(f["token_id"] for f in doc["expired"]) == ids(report.expired)
    assert {f["name"] for f in doc["expired"]} == {"old-0", "old-1"}


def test_tokens_about_to_expire_are_reported_soon(workmail_server):
    short = workmail_server.create_user("carol", lifetime_in_days=30)
    long = workmail_server.create_user("dave", lifetime_in_days=365)
    t_short = short.create_token("laptop")
    t_long = long.create_token("laptop")
    workmail_server.advance_clock(25 * DAY)
    now = workmail_server.now()
    assert short.use_token(t_short["Token"])

    report = token_audit.audit(short.organization_id, now=now, soon_days=7)
    assert ids(report.expiring_soon) == [t_short["PersonalAccessTokenId"]]
    assert report.expired == [] and report.never_used == []
    # DateLastUsed follows the server's clock, not the real one.
    meta = boto3.client("workmail").get_personal_access_token_metadata(
        OrganizationId=short.organization_id, PersonalAccessTokenId=t_short["PersonalAccessTokenId"])
    assert abs(meta["DateLastUsed"].timestamp() - now) < 60

    report = token_audit.audit(long.organization_id, now=now, soon_days=7)
    assert report.expiring_soon == [] and report.expired == []
    assert ids(report.never_used) == [t_long["PersonalAccessTokenId"]]
    assert token_audit.audit(short.organization_id, now=now, soon_days=1).expiring_soon == []


@pytest.mark.workmail_reset
def test_marker_resets_state_and_the_clock_is_back_to_real_time(workmail_server):
    # Earlier tests on this worker created organizations and moved the clock; both are undone.
    assert boto3.client("workmail").list_organizations()["OrganizationSummaries"] == []
    assert abs(workmail_server.now() - time.time()) < 5


def test_reset_fixture_forgets_everything(workmail_server):
    org = workmail_server.create_organization()
    wm = boto3.client("workmail")
    assert org in [o["OrganizationId"] for o in wm.list_organizations()["OrganizationSummaries"]]
    workmail_server.reset()
    assert wm.list_organizations()["OrganizationSummaries"] == []


def test_with_statement_outside_the_fixture():
    server = WorkMailServer()
    with server as url:
        wm = boto3.client("workmail", endpoint_url=url, region_name="eu-west-1",
                          aws_access_key_id="111122223333", aws_secret_access_key="x")
        org_id = wm.create_organization(Alias="with-statement")["OrganizationId"]
        assert wm.describe_organization(OrganizationId=org_id)["State"] == "Active"
        pid = server.process.pid
    assert not server.running
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_reset_fixture_starts_from_nothing(workmail_reset):
    assert workmail_reset.client().list_organizations()["OrganizationSummaries"] == []
    assert os.environ["AWS_ENDPOINT_URL_WORKMAIL"] == workmail_reset.url
