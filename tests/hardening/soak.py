"""Soak load driver for scripts/soak.sh (issue 5): mixed load on one loopback server for a bounded time.

Workers loop over lists (AWS ListPersonalAccessTokens/ListUsers/ListOrganizations with pagination), PAT creates and
deletes (web API), verifications (good and bad tokens) and bad requests (malformed bodies, unknown targets, missing
auth). Prints requests per second and the server's RSS every interval; exits non-zero on any 5xx, on an unexpected
answer, or when memory keeps growing.

Memory is judged after a warm-up, because caches legitimately fill at first (SQLite page caches, the allocator's
arenas, the failure windows): the RSS samples of the second half of the run are fitted with a least-squares line,
and its slope must stay under --max-rss-slope-mib-per-min. Runs shorter than --min-judged-seconds are too short to
tell a slope from noise; for them only --max-rss-growth-mib (start to end) is checked.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
import uuid

ACCOUNT = "111122223333"
AUTH = (f"AWS4-HMAC-SHA256 Credential={ACCOUNT}/20250101/us-east-1/workmail/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64)
PASSWORD = "Soak-Passw0rd!"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.c = http.client.HTTPConnection(host, port, timeout=30)

    def req(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def aws(self, op: str, body) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        s, b = self.req("POST", "/", data, {"Content-Type": "application/x-amz-json-1.1",
                                             "X-Amz-Target": f"WorkMailService.{op}", "X-Amz-Date": "20250101T000000Z",
                                             "Authorization": AUTH})
        return s, (json.loads(b) if b else {})

    def web(self, method: str, path: str, body=None, bearer: str | None = None) -> tuple[int, dict]:
        h = {"Content-Type": "application/json"}
        if bearer:
            h["Authorization"] = f"Bearer {bearer}"
        s, b = self.req(method, path, json.dumps(body).encode() if body is not None else None, h)
        try:
            return s, (json.loads(b) if b else {})
        except ValueError:
            return s, {}


def setup(host: str, port: int, users: int) -> tuple[str, list[tuple[str, str]]]:
    c = Conn(host, port)
    alias = f"soak{uuid.uuid4().hex[:10]}"
    s, b = c.aws("CreateOrganization", {"Alias": alias})
    assert s == 200, b
    org = b["OrganizationId"]
    s, b = c.aws("PutIdentityProviderConfiguration", {
        "OrganizationId": org, "AuthenticationMode": "IDENTITY_PROVIDER_AND_DIRECTORY",
        "IdentityCenterConfiguration": {
            "InstanceArn": "arn:aws:sso:::instance/ssoins-1111111111111111",
            "ApplicationArn": "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"},
        "PersonalAccessTokenConfiguration": {"Status": "ACTIVE", "LifetimeInDays": 30}})
    assert s == 200, b
    sessions = []
    for i in range(users):
        name = f"user{i}"
        s, b = c.aws("CreateUser", {"OrganizationId": org, "Name": name, "DisplayName": name, "Password": PASSWORD})
        assert s == 200, b
        uid = b["UserId"]
        s, b = c.aws("RegisterToWorkMail", {"OrganizationId": org, "EntityId": uid, "Email": f"{name}@{alias}.awsapps.com"})
        assert s == 200, b
        s, b = c.web("POST", "/webapp/api/sessions", {"OrganizationId": org, "Username": name, "Password": PASSWORD})
        assert s == 200, b
        sessions.append((name, b["SessionToken"]))
    return org, sessions


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.by_kind: dict[str, int] = {}
        self.errors: list[str] = []

    def add(self, kind: str):
        with self.lock:
            self.count += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def fail(self, msg: str):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(msg)


def worker(host, port, org, user, session, deadline, stats: Stats, seed: int):
    rng = random.Random(seed)
    c = Conn(host, port)
    mine: list[tuple[str, str]] = []  # (id, secret)

    def expect(kind, got, want, body):
        stats.add(kind)
        if got != want:
            stats.fail(f"{kind}: HTTP {got} (wanted {want}) {str(body)[:200]}")

    while time.monotonic() < deadline:
        r = rng.random()
        if r < 0.30:
            op = rng.choice(["ListPersonalAccessTokens", "ListUsers", "ListOrganizations"])
            body = {"MaxResults": rng.randint(1, 50)}
            if op != "ListOrganizations":
                body["OrganizationId"] = org
            for _ in range(5):
                s, b = c.aws(op, body)
                expect("list", s, 200, b)
                if s != 200 or "NextToken" not in b:
                    break
                body["NextToken"] = b["NextToken"]
        elif r < 0.45 and len(mine) < 40:
            s, b = c.web("POST", "/webapp/api/personal-access-tokens", {"Name": f"soak-{rng.random():.6f}"}, session)
            expect("create", s, 201, b)
            if s == 201:
                mine.append((b["PersonalAccessTokenId"], b["Token"]))
        elif r < 0.58 and mine:
            pid, _ = mine.pop(rng.randrange(len(mine)))
            s, b = c.web("DELETE", f"/webapp/api/personal-access-tokens/{pid}", None, session)
            expect("delete", s, 204, b)
        elif r < 0.85:
            if mine and rng.random() < 0.7:
                _, secret = rng.choice(mine)
                s, b = c.web("POST", "/auth/v1/verify", {"OrganizationId": org, "Username": user, "Token": secret,
                                                        "Scope": "IMAP"})
                expect("verify", s, 200, b)
            else:
                s, b = c.web("POST", "/auth/v1/verify",
                             {"OrganizationId": org, "Username": user, "Token": "wmpat_" + uuid.uuid4().hex,
                              "Scope": "IMAP"})
                expect("verify-bad", s, 401, b)
        else:
            kind = rng.randrange(4)
            if kind == 0:
                s, b = c.aws("ListOrganizations", b"{not json")
                expect("bad", s, 400, b)
            elif kind == 1:
                s, b = c.aws("CreateGroup", {})
                expect("bad", s, 400, b)
            elif kind == 2:
                s, b = c.aws("ListOrganizations", {"NextToken": "garbage-" + uuid.uuid4().hex})
                expect("bad", s, 400, b)
            else:
                s, b = c.req("POST", "/", b"{}", {"X-Amz-Target": "WorkMailService.ListOrganizations"})
                expect("bad", s, 400, b)
        if stats.errors and len(stats.errors) >= 20:
            return


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--max-rss-growth-mib", type=float, default=64,
                    help="start-to-end RSS growth allowed in runs too short for a slope")
    ap.add_argument("--max-rss-slope-mib-per-min", type=float, default=1.0,
                    help="RSS slope allowed over the second half of the run")
    ap.add_argument("--min-judged-seconds", type=float, default=120,
                    help="runs at least this long are judged by the slope")
    a = ap.parse_args()
    hostport = a.url.split("//", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    port = int(port)
    org, sessions = setup(host, port, a.workers)
    rss_start = rss_kib(a.pid)
    print(f"soak: {a.workers} workers for {a.seconds:.0f}s against {a.url}; server RSS at start {rss_start / 1024:.1f} MiB",
          flush=True)
    stats = Stats()
    start = time.monotonic()
    deadline = start + a.seconds
    threads = [threading.Thread(target=worker, args=(host, port, org, u, s, deadline, stats, i), daemon=True)
               for i, (u, s) in enumerate(sessions)]
    for t in threads:
        t.start()
    last_n, last_t = 0, start
    rss_samples = [(0.0, rss_start)]
    while any(t.is_alive() for t in threads):
        time.sleep(min(a.interval, max(0.05, deadline - time.monotonic() + 0.05)))
        now = time.monotonic()
        with stats.lock:
            n = stats.count
        rss = rss_kib(a.pid)
        rss_samples.append((now - start, rss))
        if now - last_t > 0.01:
            print(f"soak: t={now - start:6.1f}s  {(n - last_n) / (now - last_t):8.1f} req/s  total {n}  "
                  f"RSS {rss / 1024:.1f} MiB", flush=True)
        last_n, last_t = n, now
        if time.monotonic() > deadline + 60:
            print("soak: workers did not finish within 60 s of the deadline", flush=True)
            return 1
    elapsed = time.monotonic() - start
    rss_end = rss_kib(a.pid)
    print(f"soak: {stats.count} requests in {elapsed:.1f}s = {stats.count / elapsed:.1f} req/s; by kind {stats.by_kind}")
    rss_samples.append((elapsed, rss_end))
    late = [(t, kib / 1024) for t, kib in rss_samples if t >= elapsed / 2]
    slope = slope_per_minute(late)
    print(f"soak: server RSS start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB, "
          f"max {max(kib for _, kib in rss_samples) / 1024:.1f} MiB; slope over the second half "
          f"{slope:+.2f} MiB/min ({len(late)} samples)")
    print("soak: RSS curve (s, MiB): " + " ".join(f"{t:.0f}:{kib / 1024:.1f}" for t, kib in rss_samples))
    if stats.errors:
        print("soak: FAILED, unexpected answers:\n  " + "\n  ".join(stats.errors))
        return 1
    if elapsed >= a.min_judged_seconds:
        if slope > a.max_rss_slope_mib_per_min:
            print(f"soak: FAILED, RSS still growing after the warm-up: {slope:+.2f} MiB/min over the second half "
                  f"(allowed {a.max_rss_slope_mib_per_min} MiB/min)")
            return 1
    elif (rss_end - rss_start) / 1024 > a.max_rss_growth_mib:
        print(f"soak: FAILED, RSS grew by more than {a.max_rss_growth_mib} MiB")
        return 1
    return 0


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute (0 with fewer than 3 points)."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / var


if __name__ == "__main__":
    sys.exit(main())
