"""Schemathesis against a live `workmail-pat serve` with docs/openapi.yaml: every generated request (valid and
invalid bodies, headers, path parameters) must get a documented status with a body matching its schema and content
type, and never a 5xx. The server is seeded with one organization and user; the run authenticates with a bearer
session token of that user (as API clients do), so the token operations are reached past authentication.

Sign-out is run on its own, last, with a session of its own: it would end the session the other operations use.
Schemathesis's own reports (JUnit, and a pytest file reproducing any failure) are kept in
tests/openapi/output/.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import urllib.request

import pytest
import schemathesis

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCHEMA = REPO / "docs" / "openapi.yaml"
OUT = HERE / "output"
BIN = os.environ.get("WORKMAIL_PAT_BIN", str(REPO / "target" / "debug" / "workmail-pat"))
SCHEMATHESIS = pathlib.Path(sys.executable).parent / "schemathesis"
PASSWORD = "Correct-Horse-7"
# Per operation and phase; the whole step takes about 25 s.
MAX_EXAMPLES = os.environ.get("WORKMAIL_PAT_OPENAPI_EXAMPLES", "100")
# Fixed, so a failure in CI reproduces; set another to explore.
SEED = os.environ.get("WORKMAIL_PAT_OPENAPI_SEED", "4610")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fresh server on a SQLite file, seeded with the organization `openapi` and its user `alice`."""
    tmp = tmp_path_factory.mktemp("openapi")
    db = tmp / "openapi.db"
    # The log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = open(tmp / "server.log", "w+")
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--database", f"sqlite:{db}", "--seed", str(HERE / "seed.yaml")],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on http://"), (line, (tmp / "server.log").read_text())
    url = line.split()[-1]
    dump = json.loads(subprocess.run([BIN, "dump", "--database", f"sqlite:{db}"], capture_output=True, text=True, check=True).stdout)
    org = next(o["OrganizationId"] for o in dump["Organizations"] if o["Alias"] == "openapi")
    try:
        yield url, org
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        log.close()
        err = (tmp / "server.log").read_text()
        # An internal error is logged at ERROR even when its 5xx answer was documented.
        assert not re.search(r"\bERROR\b|panicked", err), err[-4000:]


def session(url, org):
    body = json.dumps({"OrganizationId": org, "Username": "alice", "Password": PASSWORD}).encode()
    req = urllib.request.Request(f"{url}/webapp/api/sessions", body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["SessionToken"]


def run_schemathesis(url, token, name, *filters):
    OUT.mkdir(exist_ok=True)
    cmd = [
        str(SCHEMATHESIS), "run", str(SCHEMA),
        "--url", url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", MAX_EXAMPLES,
        "--seed", SEED,
        "--workers", "1",
        "--request-timeout", "10",
        "--no-color",
        "--generation-database", "none",
        "--report", "junit,pytest",
        "--report-junit-path", str(OUT / f"{name}.junit.xml"),
        "--report-pytest-path", str(OUT / f"{name}_reproduce.py"),
        *filters,
    ]
    # Run inside the output folder: Schemathesis keeps a cache of crashes in its working directory.
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=OUT)
    print(run.stdout[-20000:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-4000:]
    return run.stdout


def test_every_documented_operation(server):
    url, org = server
    out = run_schemathesis(url, session(url, org), "api", "--exclude-operation-id", "signOut")
    assert "Tested: 5" in out, out


def test_successful_answers_match_the_document(server):
    """Schemathesis cannot guess a valid password or token, so the 200s of sign-in and verification (and one of
    each token operation) are checked here against the same document."""
    import requests

    url, org = server
    schema = schemathesis.openapi.from_path(str(SCHEMA))

    def check(method, path, template, **kwargs):
        response = requests.request(method, url + path, timeout=10, **kwargs)
        schema[template][method].validate_response(response)
        return response

    signed_in = check("POST", "/webapp/api/sessions", "/webapp/api/sessions",
                      json={"OrganizationId": org, "Username": "alice", "Password": PASSWORD})
    assert signed_in.status_code == 200
    auth = {"Authorization": f"Bearer {signed_in.json()['SessionToken']}"}
    created = check("POST", "/webapp/api/personal-access-tokens", "/webapp/api/personal-access-tokens",
                    json={"Name": "contract", "Scopes": ["IMAP"]}, headers=auth)
    assert created.status_code == 201
    token = created.json()
    verified = check("POST", "/auth/v1/verify", "/auth/v1/verify",
                     json={"OrganizationId": org, "Username": "alice", "Token": token["Token"], "Scope": "IMAP"})
    assert verified.status_code == 200
    listed = check("GET", "/webapp/api/personal-access-tokens", "/webapp/api/personal-access-tokens", headers=auth)
    assert any(t.get("DateLastUsed") for t in listed.json()["PersonalAccessTokenSummaries"])
    deleted = check("DELETE", f"/webapp/api/personal-access-tokens/{token['PersonalAccessTokenId']}",
                    "/webapp/api/personal-access-tokens/{id}", headers=auth)
    assert deleted.status_code == 204
    signed_out = check("DELETE", "/webapp/api/sessions", "/webapp/api/sessions", headers=auth)
    assert signed_out.status_code == 204


def test_sign_out(server):
    url, org = server
    run_schemathesis(url, session(url, org), "sign_out", "--include-operation-id", "signOut")
