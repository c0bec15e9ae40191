"""The container image and the static binary it holds (issue 17, item 1).

Run by scripts/test.sh after `scripts/image.sh` built the image, with
- WORKMAIL_PAT_BIN: the static binary (the one in the image and in the wheel),
- WORKMAIL_PAT_IMAGE: the image name (default workmail-pat:latest),
- CONTAINERS_CONF: the podman settings image.sh wrote (runtime, ulimits).

The first tests need no container runtime: the static binary against the machine's PostgreSQL by host name, the
`health` subcommand, the test-API opt-in. The container tests skip, with the reason shown by `pytest -rs`, on a
machine where podman cannot run a container at all; set WORKMAIL_PAT_REQUIRE_CONTAINERS=1 to make that a failure.
"""

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

BIN = os.environ.get("WORKMAIL_PAT_BIN", "")
IMAGE = os.environ.get("WORKMAIL_PAT_IMAGE", "workmail-pat:latest")
REGION = "us-east-1"
PG = "postgres@127.0.0.1:5432"


def run(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(url, seconds=30):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            status, body = get(url + "/_workmail-pat/health")
            if status == 200:
                return json.loads(body)
            last = status
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy after {seconds} s: {last}")


def workmail(url, account):
    return boto3.client(
        "workmail",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=account,
        aws_secret_access_key="dummy-secret-key",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


def org_ids(client):
    return {o["OrganizationId"] for o in client.list_organizations()["OrganizationSummaries"]}


def new_account():
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def write_key(path: Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


class Server:
    """The binary on this machine (not in a container)."""

    def __init__(self, args):
        self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def binary():
    if not BIN or not os.access(BIN, os.X_OK):
        pytest.fail("WORKMAIL_PAT_BIN must name the static workmail-pat binary")
    return BIN


# ---- the static binary, no container ------------------------------------------------------------------------


def test_the_binary_is_fully_static(binary):
    head = run(["readelf", "-l", "-d", binary]).stdout
    assert "INTERP" not in head and "NEEDED" not in head, head


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_static_binary_reaches_postgresql_by_host_name(binary, tmp_path, host):
    """Static glibc resolves `localhost` through /etc/hosts (its built-in `files` source) with no NSS module."""
    if run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    db = f"wmpat_static_{secrets.token_hex(4)}"
    assert run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"]).returncode == 0
    try:
        write_key(tmp_path / "token-key")
        write_key(tmp_path / "pepper")
        srv = Server(["--database", f"postgres://postgres@{host}:5432/{db}",
                      "--token-key-file", str(tmp_path / "token-key"), "--pepper-file", str(tmp_path / "pepper")])
        try:
            assert wait_healthy(srv.url)["Database"] == "ok"
            client = workmail(srv.url, new_account())
            org = client.create_organization(Alias=f"static-{secrets.token_hex(3)}")["OrganizationId"]
            assert org in org_ids(client)
        finally:
            assert srv.stop() == 0
    finally:
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])


def test_health_subcommand(binary):
    srv = Server(["--database", "sqlite::memory:"])
    try:
        ok = run([binary, "health", "--url", srv.url])
        assert ok.returncode == 0, ok
        assert "200" in ok.stdout
        ok = run([binary, "health", "--url", srv.url.replace("127.0.0.1", "localhost") + "/"])
        assert ok.returncode == 0, ok
    finally:
        assert srv.stop() == 0
    down = run([binary, "health", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    assert down.returncode == 1 and "cannot connect" in down.stderr, down
    bad = run([binary, "health", "--url", "https://127.0.0.1:1"])
    assert bad.returncode != 0 and "http://" in bad.stderr, bad


def test_health_subcommand_fails_on_a_non_200(binary):
    """Anything but 200 (here a server that answers 404 to everything) is unhealthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.Popen([binary, "health", "--url", f"http://127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        conn, _ = s.accept()
        with conn:
            request = conn.recv(4096)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        _, err = proc.communicate(timeout=10)
    assert request.startswith(b"GET /_workmail-pat/health HTTP/1.1\r\n"), request
    assert proc.returncode == 1 and "404" in err, err


def test_test_api_off_loopback_needs_the_opt_in_and_allowed_hosts(binary):
    base = ["serve", "--listen", "0.0.0.0:0", "--database", "sqlite::memory:", "--enable-test-api",
            "--allow-insecure-any-credentials"]
    refused = run([binary, *base], timeout=30)
    assert refused.returncode != 0 and "--allow-test-api-on-network" in refused.stderr, refused
    no_hosts = run([binary, *base, "--allow-test-api-on-network"], timeout=30)
    assert no_hosts.returncode != 0 and "--allowed-host" in no_hosts.stderr, no_hosts


def test_test_api_on_network_keeps_host_json_and_origin_checks(binary):
    # The listener is 0.0.0.0, reached here through 127.0.0.1; the checks are the same from any address.
    proc = subprocess.Popen([binary, "serve", "--listen", "0.0.0.0:0", "--database", "sqlite::memory:",
                             "--allow-insecure-any-credentials", "--enable-test-api", "--allowed-host", "wmpat"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "WORKMAIL_PAT_ALLOW_TEST_API_ON_NETWORK": "true"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://0.0.0.0:"), (line, proc.stderr.read() if not line else "")
        port = int(line.rsplit(":", 1)[1])
        assert reset(port, "wmpat:4610") == 200
        assert reset(port, "127.0.0.1") == 200
        assert reset(port, "evil.example") == 403
        assert reset(port, "wmpat", content_type="text/plain") != 200
        assert reset(port, "wmpat", origin="http://evil.example") == 403
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert "test_api_on_network" in proc.stderr.read()


def reset(port, host, content_type="application/json", origin=None, address="127.0.0.1"):
    conn = http.client.HTTPConnection(address, port, timeout=10)
    headers = {"Host": host, "Content-Type": content_type}
    if origin:
        headers["Origin"] = origin
    conn.request("POST", "/_workmail-pat/reset", body=b"{}", headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


# ---- the image -----------------------------------------------------------------------------------------------


def podman(*args, timeout=120, check=True):
    r = run(["podman", *args], timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


@pytest.fixture(scope="module")
def image():
    why = None
    if shutil.which("podman") is None:
        why = "podman is not installed"
    elif podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {IMAGE} not found: build it with ./scripts/image.sh")
    else:
        probe = podman("run", "--rm", "--network", "none", IMAGE, "--version", check=False)
        if probe.returncode != 0 or "workmail-pat" not in probe.stdout:
            why = f"this machine cannot run containers: podman run failed: {probe.stderr.strip()[-400:]}"
    if why:
        if os.environ.get("WORKMAIL_PAT_REQUIRE_CONTAINERS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return IMAGE


class Container:
    def __init__(self, image, *args, name=None, cmd=()):
        self.name = name or f"wmpat-test-{secrets.token_hex(4)}"
        podman("run", "-d", "--name", self.name, *args, image, *cmd)

    def port(self):
        out = podman("port", self.name, "4610/tcp").stdout.strip().splitlines()[0]
        return int(out.rsplit(":", 1)[1])

    def logs(self):
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def remove(self):
        podman("rm", "-f", "-v", "-t", "10", self.name, check=False)


@pytest.fixture
def cleanup():
    things = []
    yield things
    for kind, name in reversed(things):
        if kind == "container":
            podman("rm", "-f", "-v", "-t", "10", name, check=False)
        else:
            podman(kind, "rm", "-f", name, check=False)


def test_image_is_scratch_with_one_binary(image):
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/workmail-pat"]
    assert config["Cmd"][0] == "serve" and "0.0.0.0:4610" in config["Cmd"]
    assert "4610/tcp" in config["ExposedPorts"]
    assert "/data" in config["Volumes"]
    assert info["Healthcheck"]["Test"][:3] == ["CMD", "/workmail-pat", "health"], info.get("Healthcheck")
    # Two layers (binary and data folder), nothing else.
    assert len(info["RootFS"]["Layers"]) == 2, info["RootFS"]
    assert info["Size"] < 40 * 1024 * 1024, info["Size"]


def test_serves_boto3_through_the_published_port_and_keeps_state_in_its_volume(image, cleanup):
    volume = f"wmpat-test-{secrets.token_hex(4)}"
    cleanup.append(("volume", volume))
    first = Container(image, "-p", "127.0.0.1::4610", "-v", f"{volume}:/data")
    cleanup.append(("container", first.name))
    url = f"http://127.0.0.1:{first.port()}"
    assert wait_healthy(url)["Status"] == "ok", first.logs()
    # The image's own HEALTHCHECK command, run the way the engine runs it.
    assert podman("healthcheck", "run", first.name, check=False).returncode == 0, first.logs()
    # It runs as the unprivileged user.
    assert podman("top", first.name, "user").stdout.split()[1:] == ["10001"]

    account = new_account()
    client = workmail(url, account)
    org = client.create_organization(Alias=f"image-{secrets.token_hex(3)}")["OrganizationId"]
    assert org in org_ids(client)

    # A restart of the same container, then a new container on the same volume: the organization is still there.
    podman("restart", "-t", "10", first.name)
    url = f"http://127.0.0.1:{first.port()}"
    wait_healthy(url)
    assert org in org_ids(workmail(url, account))
    first.remove()
    second = Container(image, "-p", "127.0.0.1::4610", "-v", f"{volume}:/data")
    cleanup.append(("container", second.name))
    url = f"http://127.0.0.1:{second.port()}"
    wait_healthy(url)
    assert org in org_ids(workmail(url, account)), second.logs()
    stop = podman("stop", "-t", "20", second.name)
    assert stop.returncode == 0
    state = json.loads(podman("inspect", second.name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, (state, second.logs())


def test_service_container_reached_by_name_with_the_test_api(image, cleanup):
    """The CI use: another container on the same network reaches the server by its name (DNS in the static
    binary), and the test API answers to that name only because the user opted in and named it."""
    network = f"wmpat-test-{secrets.token_hex(4)}"
    podman("network", "create", network)
    cleanup.append(("network", network))
    server = Container(
        image, "--network", network, "--network-alias", "wmpat", "-p", "127.0.0.1::4610",
        "-e", "WORKMAIL_PAT_ENABLE_TEST_API=true", "-e", "WORKMAIL_PAT_ALLOW_TEST_API_ON_NETWORK=true",
        "-e", "WORKMAIL_PAT_ALLOWED_HOSTS=wmpat",
    )
    cleanup.append(("container", server.name))
    port = server.port()
    wait_healthy(f"http://127.0.0.1:{port}")
    assert "test_api_on_network" in server.logs()

    other = podman("run", "--rm", "--network", network, image, "health", "--url", "http://wmpat:4610", check=False)
    assert other.returncode == 0, (other.stdout, other.stderr, server.logs())

    assert reset(port, "wmpat:4610") == 200
    assert reset(port, "evil.example:4610") == 403
    assert reset(port, "wmpat:4610", content_type="text/plain") != 200
    assert reset(port, "wmpat:4610", origin="http://evil.example") == 403


def test_test_api_in_the_image_without_allowed_hosts_is_refused(image):
    r = podman("run", "--rm", "--network", "none", "-e", "WORKMAIL_PAT_ENABLE_TEST_API=true",
               "-e", "WORKMAIL_PAT_ALLOW_TEST_API_ON_NETWORK=true", image, check=False)
    assert r.returncode != 0 and "--allowed-host" in r.stderr, r


def test_static_binary_in_the_image_reaches_postgresql_by_name(image, cleanup, tmp_path):
    """A name from the container's /etc/hosts (`--add-host`), on the host's network where PostgreSQL listens."""
    if run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    if os.geteuid() != 0:
        pytest.skip("giving the key files to the container's user needs root")
    db = f"wmpat_image_{secrets.token_hex(4)}"
    assert run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"]).returncode == 0
    try:
        keys = tmp_path / "keys"
        keys.mkdir()
        write_key(keys / "token-key")
        write_key(keys / "pepper")
        os.chmod(keys, 0o755)
        # The container's user must own the keys (they are private files: owner only).
        for f in keys.iterdir():
            os.chown(f, 10001, 10001)
        port = free_port()
        server = Container(
            image, "--network", "host", "--add-host", "db.internal:127.0.0.1", "-v", f"{keys}:/keys:ro",
            cmd=["serve", "--listen", f"127.0.0.1:{port}", "--database", f"postgres://postgres@db.internal:5432/{db}",
                 "--token-key-file", "/keys/token-key", "--pepper-file", "/keys/pepper"],
        )
        cleanup.append(("container", server.name))
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url)["Database"] == "ok", server.logs()
        client = workmail(url, new_account())
        org = client.create_organization(Alias=f"imgpg-{secrets.token_hex(3)}")["OrganizationId"]
        assert org in org_ids(client)
    finally:
        for _, name in cleanup:
            podman("rm", "-f", "-v", "-t", "5", name, check=False)
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
