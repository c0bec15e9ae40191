"""Capacity under abuse (issue 12, "Trust"): one client cannot take every connection (defect 8), and a flood of
sign-ins cannot starve other sign-ins or administrators of the password-hashing threads (defect 9).

Clients are spread over loopback addresses (all of 127.0.0.0/8 is local on Linux) so that "one client" and
"another client" are different source addresses, as they would be on a network.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import resource
import select
import signal
import socket
import threading
import time
import uuid

import pytest

from conftest import PASSWORD, ServerProcess, make_client, make_pat_org, new_account

# Generous bounds: the issue measured 25 s stalls; a healthy server answers in milliseconds.
HEALTH_DEADLINE = 2.0


def _raise_fd_limit(wanted: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the limit is {soft}")


def _open_idle(port: int, sources: list[str], per_source: int) -> list[socket.socket]:
    """Opens `per_source` connections from each source address and sends nothing on them."""
    socks = []
    for src in sources:
        for _ in range(per_source):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.bind((src, 0))
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
    return socks


def _health_latency(port: int, source: str = "127.0.0.1", timeout: float = 30.0) -> tuple[float, int | None]:
    """Seconds until GET /_workmail-pat/health is answered (status None if it never was within `timeout`)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", "/_workmail-pat/health")
        resp = conn.getresponse()
        resp.read()
        return time.monotonic() - start, resp.status
    except OSError:
        return time.monotonic() - start, None
    finally:
        conn.close()


def _close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------------------------
# Defect 8: connection slots
# --------------------------------------------------------------------------------------------------------------
def test_defect_08_one_address_cannot_take_every_connection(tmp_path):
    """256 idle sockets from 127.0.0.2 (the global cap) must not stall a health check from 127.0.0.1; the
    connections beyond the per-address cap (default 64) are answered 429 and closed at once."""
    cap = 256
    _raise_fd_limit(4 * cap + 256)
    srv = ServerProcess(
        tmp_path, name="conn-cap", extra_args=["--max-connections", str(cap), "--header-read-timeout", "20"]
    ).start()
    socks = []
    try:
        socks = _open_idle(srv.port, ["127.0.0.2"], cap)
        assert len(socks) >= cap - 8, f"only {len(socks)} connections opened"
        time.sleep(0.3)  # let the server accept them all (not an assertion of speed)
        latency, status = _health_latency(srv.port, timeout=HEALTH_DEADLINE + 3)
        print(f"\nhealth check with {len(socks)} idle sockets from one address: {latency:.3f} s, status {status}")
        assert status == 200 and latency < HEALTH_DEADLINE, (latency, status)
        # The refused ones were told why, or at least closed; the admitted ones are still open.
        refused = 0
        for s in socks:
            s.settimeout(0.05)
            try:
                data = s.recv(4096)
            except (TimeoutError, socket.timeout):
                continue
            except ConnectionResetError:
                refused += 1
                continue
            refused += 1
            if data:
                head, _, body = data.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 429 "), data
                assert b"connection: close" in head.lower() and b"retry-after: 1" in head.lower(), head
                assert f"content-length: {len(body)}".encode() in head.lower(), data
                assert json.loads(body)["__type"] == "ThrottlingException", body
        assert cap - 64 - 8 <= refused <= cap - 64, refused
    finally:
        _close_all(socks)
        assert srv.stop() == 0


def test_defect_08_idle_connections_are_shed_near_the_global_cap(tmp_path):
    """Idle sockets from many addresses (each under its cap) filling the global cap must not stall a new client:
    near the cap the longest-idle connections are closed."""
    cap = 100
    _raise_fd_limit(4 * cap + 256)
    srv = ServerProcess(
        tmp_path, name="conn-shed", extra_args=["--max-connections", str(cap), "--header-read-timeout", "20"]
    ).start()
    socks = []
    try:
        # A keep-alive client that has been served once and now idles, opened first (so the longest idle).
        keep = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5, source_address=("127.0.0.3", 0))
        keep.request("GET", "/_workmail-pat/health")
        r = keep.getresponse()
        r.read()
        assert r.status == 200
        socks = _open_idle(srv.port, [f"127.0.0.{i}" for i in range(10, 20)], cap // 10)
        time.sleep(0.3)
        latency, status = _health_latency(srv.port, timeout=HEALTH_DEADLINE + 3)
        print(f"\nhealth check with {len(socks)} idle sockets from 10 addresses at the cap: {latency:.3f} s")
        assert status == 200 and latency < HEALTH_DEADLINE, (latency, status)
        # The server sheds down to 80 % of the cap, never below what it must: most idle sockets stay open.
        closed = 0
        for s in socks:
            s.settimeout(0.05)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except (TimeoutError, socket.timeout):
                pass
            except ConnectionResetError:
                closed += 1
        assert 0 < closed <= cap // 2, closed
    finally:
        _close_all(socks)
        assert srv.stop() == 0


# --------------------------------------------------------------------------------------------------------------
# Defect 9: the password-hashing queue
# --------------------------------------------------------------------------------------------------------------
def _post_json(port: int, path: str, body: dict, source: str, timeout: float = 30.0):
    """(status, headers, parsed body, seconds); status None when the connection failed."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return resp.status, headers, doc, time.monotonic() - start
    except OSError:
        return None, {}, None, time.monotonic() - start
    finally:
        conn.close()


def _sign_in_with_retries(port, org_id, username, password, attempts=5):
    """Signs in like a well-behaved client: a 503 is retried after its Retry-After. Returns (final status,
    total seconds, [(status, seconds) per attempt])."""
    start = time.monotonic()
    tries = []
    status = None
    for _ in range(attempts):
        status, headers, _doc, secs = _post_json(
            port,
            "/webapp/api/sessions",
            {"OrganizationId": org_id, "Username": username, "Password": password},
            "127.0.0.1",
        )
        tries.append((status, round(secs, 3)))
        if status != 503:
            break
        time.sleep(min(float(headers.get("retry-after", "1")), 5.0))
    return status, time.monotonic() - start, tries


FLOOD = 400


def test_defect_09_sign_in_flood_does_not_starve_sign_in_or_admin(tmp_path):
    """400 concurrent wrong-password sign-ins (from 20 addresses, each under the connection cap) while a legitimate
    user signs in and an administrator calls CreateUser, with --request-timeout 3: both succeed in time, and the
    flood is refused quickly (503 ServiceUnavailable with Retry-After) instead of queueing past the timeout."""
    _raise_fd_limit(4 * FLOOD + 256)
    srv = ServerProcess(tmp_path, name="hash-flood", extra_args=["--request-timeout", "3"]).start()
    try:
        account = new_account()
        org = make_pat_org(srv.url, account=account, users=("alice",))
        admin = make_client(srv.url, account=account, max_attempts=1)
        sources = [f"127.0.1.{i}" for i in range(1, 21)]
        go = threading.Barrier(FLOOD + 1)

        def flood(i):
            # Half against the real user, half against unknown ones: the answers must not tell them apart.
            user = "alice" if i % 2 else f"ghost-{i}"
            go.wait()
            status, headers, doc, secs = _post_json(
                srv.port,
                "/webapp/api/sessions",
                {"OrganizationId": org.org_id, "Username": user, "Password": "Wrong-Passw0rd"},
                sources[i % len(sources)],
            )
            return status, headers, doc, secs

        with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
            futures = [pool.submit(flood, i) for i in range(FLOOD)]
            go.wait()
            time.sleep(0.3)
            t0 = time.monotonic()
            try:
                admin.create_user(
                    OrganizationId=org.org_id, Name=f"new-{uuid.uuid4().hex[:8]}", DisplayName="n", Password=PASSWORD
                )
                create_user = "ok"
            except Exception as e:  # noqa: BLE001 - reported in the assertion
                create_user = repr(e)
            create_secs = time.monotonic() - t0
            sign_status, sign_secs, sign_tries = _sign_in_with_retries(srv.port, org.org_id, "alice", PASSWORD)
            results = [f.result() for f in futures]

        statuses = [r[0] for r in results]
        refused = [r for r in results if r[0] == 503]
        print(
            f"\nflood of {FLOOD}: statuses {sorted((s, statuses.count(s)) for s in set(statuses) if s)}; "
            f"503s answered within {max([r[3] for r in refused], default=0):.3f} s"
            f"\nCreateUser under the flood: {create_user} in {create_secs:.3f} s"
            f"\nlegitimate sign-in under the flood: {sign_status} in {sign_secs:.3f} s, attempts {sign_tries}"
        )
        assert create_user == "ok" and create_secs < 3.0, (create_user, create_secs)
        assert sign_status == 200 and sign_secs < 8.0, (sign_status, sign_secs, sign_tries)
        assert all(s < 3.0 for _, s in sign_tries), sign_tries
        # Every flood request got a real answer: a refusal of the password or a quick "busy". The queue is bounded,
        # so at most a few queued hashes can outlive the 3 s timeout, and only on a machine busy with other work
        # (seen with several builds running beside the test); before the fix the tail of the flood all timed out.
        assert set(statuses) <= {401, 408, 503}, sorted(set(statuses), key=str)
        assert statuses.count(408) <= FLOOD // 50, statuses.count(408)
        for status, headers, doc, secs in refused:
            assert doc == {"__type": "ServiceUnavailable", "Message": doc["Message"]}, doc
            assert headers.get("retry-after"), headers
            assert secs < 2.5, secs
    finally:
        assert srv.stop() == 0


def test_review_a_burst_of_connections_waits_in_the_backlog(tmp_path):
    """A burst of connections at one instant waits in the listen backlog until the server accepts it.

    With the default backlog (128) the kernel dropped the SYNs beyond it, or reset the connections it had answered
    with SYN cookies: 7 of the 400 sign-ins of the flood test above failed with ECONNRESET on a loaded CI machine.
    Here the server is stopped (SIGSTOP) while 300 clients connect, so none is accepted meanwhile: every connection
    must still be established by the kernel, and answered once the server runs again."""
    burst = 300
    _raise_fd_limit(2 * burst + 256)
    srv = ServerProcess(tmp_path, name="burst").start()
    sources = [f"127.0.4.{i}" for i in range(1, 11)]  # 30 from each address: under the per-client cap
    socks = []
    try:
        srv.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(burst):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((sources[i % len(sources)], 0))
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", srv.port))
                socks.append(s)
            deadline = time.monotonic() + 2.0
            pending = set(socks)
            while pending and time.monotonic() < deadline:
                _, writable, _ = select.select([], list(pending), [], 0.1)
                pending -= set(writable)
            refused = [s for s in socks if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]
            established = burst - len(pending) - len(refused)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        print(f"\n{established} of {burst} connections established while the server was stopped")
        assert established == burst, (established, len(pending), len(refused))
        for s in socks:
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"GET /_workmail-pat/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answers = [s.recv(64) for s in socks]
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), sorted({a[:16] for a in answers})
    finally:
        for s in socks:
            s.close()
        assert srv.stop() == 0


def test_defect_09_abandoned_password_jobs_are_skipped(tmp_path):
    """With a deep queue (--password-queue 400) and --request-timeout 1, a flood's jobs outlive their requests.
    Jobs whose request has gone must be skipped, so a sign-in right after the flood times out is served at once
    instead of after all the abandoned work."""
    # Twice the other flood: on a fast idle machine a few hundred hashes finish within the 1 s timeout, and enough
    # must be left behind that serving them all first would take well over a second.
    flood_size = 2 * FLOOD
    _raise_fd_limit(4 * flood_size + 256)
    srv = ServerProcess(
        tmp_path, name="hash-abandon", extra_args=["--request-timeout", "1", "--password-queue", str(flood_size)]
    ).start()
    try:
        account = new_account()
        org = make_pat_org(srv.url, account=account, users=("alice",))
        sources = [f"127.0.2.{i}" for i in range(1, 21)]
        go = threading.Barrier(flood_size + 1)

        def flood(i):
            go.wait()
            return _post_json(
                srv.port,
                "/webapp/api/sessions",
                {"OrganizationId": org.org_id, "Username": "alice", "Password": "Wrong-Passw0rd"},
                sources[i % len(sources)],
            )[0]

        with concurrent.futures.ThreadPoolExecutor(flood_size) as pool:
            futures = [pool.submit(flood, i) for i in range(flood_size)]
            go.wait()
            statuses = [f.result() for f in futures]
        timed_out = statuses.count(408)
        assert timed_out > flood_size // 4, sorted((s, statuses.count(s)) for s in set(statuses) if s)
        status, _h, _doc, secs = _post_json(
            srv.port,
            "/webapp/api/sessions",
            {"OrganizationId": org.org_id, "Username": "alice", "Password": PASSWORD},
            "127.0.0.1",
        )
        print(f"\n{timed_out} flood sign-ins timed out; the next sign-in: {status} in {secs:.3f} s")
        assert status == 200 and secs < 1.0, (status, secs)
    finally:
        assert srv.stop() == 0
