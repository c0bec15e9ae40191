"""Abuse limits: the per-access-key token bucket on the AWS API and the failure windows on sign-in and verify."""

import concurrent.futures
import time

import pytest

from conftest import ServerProcess, make_pat_org, new_account, sign_in, signed_request, verify, webapp


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    srv = ServerProcess(
        tmp_path_factory.mktemp("throttle"),
        name="throttle",
        extra_args=[
            "--api-rate", "20", "--api-burst", "40",
            "--user-failures", "5", "--user-failure-window", "2",
            "--ip-failures", "30", "--ip-failure-window", "60",
            # The tests play the mail server on 127.0.0.1, whose RemoteIp is believed only when it is trusted.
            "--trusted-proxy", "127.0.0.1",
        ],
    ).start()
    yield srv
    assert srv.stop() == 0


def test_api_bucket_answers_throttling_exception_per_access_key(strict):
    account, other = new_account(), new_account()

    def call(acct):
        return signed_request(strict.url, "ListOrganizations", {}, account=acct)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: call(account), range(120)))
    statuses = [r.status for r in results]
    throttled = [r for r in results if r.status != 200]
    assert statuses.count(200) >= 40, statuses
    assert throttled, "120 requests against a burst of 40 at 20/s must be throttled"
    for r in throttled:
        assert r.status == 400
        assert r.error_type == "ThrottlingException"
        assert r.json()["message"] == "Rate exceeded"
    # Another access key has its own bucket; the bucket refills with time.
    assert call(other).status == 200
    time.sleep(1.0)
    assert call(account).status == 200


def test_failed_verifications_slow_down_one_user_without_revealing_users(strict):
    org = make_pat_org(strict.url, account=new_account(), users=("alice", "bob"))
    token = org.users["alice"].create_pat("t")["Token"]
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    for _ in range(5):
        assert verify(strict.url, org.org_id, "alice", bad).status == 401
    # Alice must now slow down, even with the right token; bob is unaffected.
    limited = verify(strict.url, org.org_id, "alice", token)
    assert limited.status == 429
    assert limited.json()["__type"] == "ThrottlingException"
    assert limited.header("retry-after")
    bob_token = org.users["bob"].create_pat("b")["Token"]
    assert verify(strict.url, org.org_id, "bob", bob_token).status == 200
    # An unknown user behaves exactly like a real one: five failures, then the same 429.
    for _ in range(5):
        assert verify(strict.url, org.org_id, "nobody", bad).status == 401
    ghost = verify(strict.url, org.org_id, "nobody", bad)
    assert ghost.status == 429 and ghost.body == limited.body
    # No permanent lockout: the window forgets the failures.
    time.sleep(2.2)
    assert verify(strict.url, org.org_id, "alice", token).status == 200


def test_failed_sign_ins_slow_down_and_recover(strict):
    org = make_pat_org(strict.url, account=new_account(), users=("carol",))
    for _ in range(5):
        assert sign_in(strict.url, org.org_id, "carol", "Wrong-Password-1").status == 401
    r = sign_in(strict.url, org.org_id, "carol", "Passw0rd!Aa")
    assert r.status == 429
    time.sleep(2.2)
    r = sign_in(strict.url, org.org_id, "carol", "Passw0rd!Aa")
    assert r.status == 200, r


def test_per_ip_window_uses_the_mail_clients_address(strict):
    org = make_pat_org(strict.url, account=new_account(), users=("dave",))
    token = org.users["dave"].create_pat("t")["Token"]
    attacker = "198.51.100.7"
    # Many users, one attacking address: the per-IP window (30 failures) trips.
    statuses = []
    for i in range(31):
        r = webapp(strict.url, "POST", "/auth/v1/verify",
                   {"OrganizationId": org.org_id, "Username": f"user{i}", "Token": "wmpat_x", "Scope": "IMAP",
                    "RemoteIp": attacker})
        statuses.append(r.status)
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429
    r = webapp(strict.url, "POST", "/auth/v1/verify",
               {"OrganizationId": org.org_id, "Username": "dave", "Token": token, "Scope": "IMAP",
                "RemoteIp": attacker})
    assert r.status == 429
    # The same user from another address still works.
    r = webapp(strict.url, "POST", "/auth/v1/verify",
               {"OrganizationId": org.org_id, "Username": "dave", "Token": token, "Scope": "IMAP",
                "RemoteIp": "203.0.113.9"})
    assert r.status == 200


def test_no_throttle_turns_limits_off(tmp_path):
    srv = ServerProcess(tmp_path, extra_args=["--no-throttle", "--api-rate", "1", "--api-burst", "1",
                                              "--user-failures", "1"]).start()
    try:
        account = new_account()
        assert all(signed_request(srv.url, "ListOrganizations", {}, account=account).status == 200 for _ in range(20))
        org = make_pat_org(srv.url, account=account, users=("erin",))
        for _ in range(3):
            assert verify(srv.url, org.org_id, "erin", "wmpat_bad").status == 401
    finally:
        assert srv.stop() == 0
