"""The front door (issue 17, item 3): every fenced ```sh, ```python and ```yaml block of README.md,
python/README.md and docs/*.md is run as a new user would run it, against a fresh server, so an example that does
not work fails CI.

How each block runs (in its own temporary directory, HOME included):
- ``sh``: bash with `set -euo pipefail`, PATH starting with the binary under test and this venv (aws, pip...).
  `cargo run --release -- ` becomes the built `workmail-pat`; a `workmail-pat serve ...` line is started in the
  background on a free port (unless it names `--listen`), waited for ("listening on"), and stopped with SIGTERM
  when the block ends (it must exit 0). `curl` fails on HTTP errors (`-fsS`).
- ``python``: this venv's Python with `AWS_ENDPOINT_URL_WORKMAIL`, dummy credentials and a region set, the pytest
  plugin importable (`python/`) and `WORKMAIL_PAT_BIN` set. A block defining `test_` functions is run by pytest with
  the plugin (which starts its own server), anything else as a script.
- ``yaml``: a seed file (it has `organizations:`) is loaded with `workmail-pat seed` into a new database.

Placeholders the documents use, filled in from the fresh server's state: `127.0.0.1:4610` and `localhost:4610`
(the default address) become the fresh server's address; in ``sh`` blocks `m-…` is an organization id and `…`
a personal access token id (an organization with a user and a token is created first when a block uses them).

Blocks that cannot run here are listed in SKIP with the reason; a new block that is neither runnable nor listed
fails with a message saying what to do. The count of blocks run is printed at the end (and in
`target/frontdoor-count.txt` when the directory exists).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import (
    BIN,
    IDC_APPLICATION_ARN,
    IDC_INSTANCE_ARN,
    REPO,
    ServerProcess,
    make_client,
    sign_in,
    webapp,
)

LANGS = ("sh", "python", "yaml")
TIMEOUT = 180

# (file, a distinctive piece of the block, why it is not run here). Each entry is a conscious decision: keep the
# reason true, and prefer making an example runnable over listing it.
SKIP: list[tuple[str, str, str]] = [
    ("README.md", "./scripts/test.sh",
     "is the test command itself: this test runs inside it"),
    ("README.md", "workmail-pat-bench",
     "benchmark, fuzzing and soak runs of minutes each; scripts/test.sh runs their smoke versions"),
    ("README.md", "maturin build --release --out ../target/pytest-wheel",
     "a release build of the wheel (minutes); scripts/test.sh builds, installs and runs it in a fresh venv"),
    ("python/README.md", "maturin build --release --out ../target/pytest-wheel",
     "a release build of the wheel (minutes); scripts/test.sh builds, installs and runs it in a fresh venv"),
    ("python/README.md", "pip install 'pytest-workmail-pat[boto3]'",
     "installs the published wheel; scripts/test.sh installs the wheel it builds and runs the sample project"),
    ("README.md", "openssl rand -hex 32 > /etc/workmail-pat/token-key",
     "a production setup: writes to /etc and serves PostgreSQL replicas on 10.0.0.x addresses; "
     "tests/sdk_replicas.rs runs three replicas on one PostgreSQL"),
    ("README.md", "systemctl enable --now workmail-pat",
     "installs a system service on a production host; test_operator_kit.py checks the unit with systemd-analyze"),
    ("README.md", "./scripts/image.sh",
     "builds and runs the container image; scripts/test.sh builds it with scripts/image.sh and tests/container runs "
     "it (health, boto3 through the published port, state across restarts)"),
    ("README.md", "image: workmail-pat:latest",
     "compose files need a container engine and compose; tests/container runs the image the same way (a named "
     "container reached by other containers, the test API behind --allowed-host, PostgreSQL by host name)"),
    ("README.md", "workmail-pat migrate --from sqlite:/var/lib/workmail-pat",
     "a production migration (/var/lib, a PostgreSQL host named db); tests/store_migrate.rs runs migrate"),
]


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.lang}"


FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")


def extract(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file tagged sh, python or yaml (CommonMark fences, any length)."""
    rel = str(path.relative_to(REPO))
    blocks, lines = [], path.read_text("utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group("fence"), m.group("info").lower(), i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        if lang in ("bash", "shell", "console"):
            lang = "sh"
        if lang in ("py", "python3"):
            lang = "python"
        if lang == "yml":
            lang = "yaml"
        if lang in LANGS:
            blocks.append(Block(rel, start, lang, "\n".join(body) + "\n"))
    return blocks


def documents() -> list[Path]:
    return [REPO / "README.md", REPO / "python" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


BLOCKS = [b for doc in documents() if doc.exists() for b in extract(doc)]


def skip_reason(block: Block) -> str | None:
    for file, piece, reason in SKIP:
        if block.file == file and piece in block.text:
            return reason
    return None


def author_help(block: Block) -> str:
    return (
        f"\n\nThe front-door test (tests/python/test_frontdoor.py) runs every ```sh, ```python and ```yaml block of "
        f"README.md, python/README.md and docs/*.md against a fresh server. {block.id} did not work as written. "
        f"Fix the example (the module docstring says how blocks are run and which placeholders are filled in), "
        f"or, if it cannot run in CI (a production host, real AWS, a container runtime, minutes of work), add "
        f"({block.file!r}, <a distinctive piece of the block>, <the reason>) to SKIP in that file."
    )


RESULTS: dict[str, str] = {}


# --------------------------------------------------------------------------------------------------------------
# A fresh server and its state
# --------------------------------------------------------------------------------------------------------------
def fresh_server(work: Path) -> ServerProcess:
    return ServerProcess(work / "server", extra_args=["--enable-test-api"], name="frontdoor").start()


def populate(url: str) -> dict[str, str]:
    """An organization (PAT configuration ACTIVE) with a registered user and one token: what `m-…` and `…` stand
    for."""
    wm = make_client(url)
    alias = f"frontdoor{uuid.uuid4().hex[:8]}"
    org = wm.create_organization(Alias=alias)["OrganizationId"]
    wm.put_identity_provider_configuration(
        OrganizationId=org,
        AuthenticationMode="IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration={"InstanceArn": IDC_INSTANCE_ARN, "ApplicationArn": IDC_APPLICATION_ARN},
        PersonalAccessTokenConfiguration={"Status": "ACTIVE", "LifetimeInDays": 90},
    )
    uid = wm.create_user(OrganizationId=org, Name="alice", DisplayName="Alice", Password="Correct-Horse-7")["UserId"]
    wm.register_to_work_mail(OrganizationId=org, EntityId=uid, Email=f"alice@{alias}.awsapps.com")
    session = sign_in(url, org, "alice", "Correct-Horse-7").json()["SessionToken"]
    pat = webapp(url, "POST", "/webapp/api/personal-access-tokens", {"Name": "laptop"}, bearer=session).json()
    return {"org": org, "pat": pat["PersonalAccessTokenId"]}


def with_address(text: str, url: str) -> str:
    hostport = url.split("://", 1)[1]
    return re.sub(r"\b(?:127\.0\.0\.1|localhost):4610\b", hostport, text)


def environment(work: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WORKMAIL_PAT_", "PYTEST_"))}
    home = work / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(Path(BIN).resolve().parent), str(Path(sys.executable).parent), env["PATH"]]),
        AWS_ENDPOINT_URL_WORKMAIL=url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        WORKMAIL_PAT_BIN=str(Path(BIN).resolve()),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")])),
        RUST_LOG="warn",
    )
    # Only the binary under test may be called `workmail-pat`: link it under that name when it is called otherwise.
    if Path(BIN).name != "workmail-pat":
        link = work / "bin" / "workmail-pat"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(Path(BIN).resolve())
        env["PATH"] = f"{link.parent}{os.pathsep}{env['PATH']}"
    return env


# --------------------------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------------------------
SH_PRELUDE = r"""
set -euo pipefail
curl() { command curl -fsS "$@"; }
__wmpat_servers=()
__wmpat_stop() {
    local rc=$? pid
    for pid in "${__wmpat_servers[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        if ! wait "$pid"; then echo "frontdoor: a background 'workmail-pat serve' did not exit cleanly" >&2; rc=1; fi
    done
    exit "$rc"
}
trap __wmpat_stop EXIT
# `workmail-pat serve ...` from a block: in the background, on a free port unless the block names one; returns
# once it listens (its line is echoed), fails if it exits first.
__wmpat_serve() {
    local listen=(--listen 127.0.0.1:0) a out
    for a in "$@"; do case "$a" in --listen|--listen=*) listen=() ;; esac; done
    out=$(mktemp)
    workmail-pat serve "$@" "${listen[@]}" >"$out" &
    __wmpat_servers+=("$!")
    for _ in $(seq 1 300); do
        if grep -q '^listening on ' "$out"; then cat "$out"; return 0; fi
        kill -0 "$!" 2>/dev/null || { echo "frontdoor: workmail-pat serve exited before listening" >&2; return 1; }
        sleep 0.1
    done
    echo "frontdoor: workmail-pat serve did not listen within 30 s" >&2
    return 1
}
"""


def rewrite_sh(text: str, url: str, state: dict[str, str] | None) -> str:
    text = text.replace("cargo run --release -- ", "workmail-pat ")
    text = re.sub(r"(?m)^(\s*)workmail-pat serve\b", r"\1__wmpat_serve", text)
    text = with_address(text, url)
    if state:
        text = text.replace("m-…", state["org"]).replace("…", state["pat"])
    return text


def run_sh(block: Block, work: Path, url: str) -> subprocess.CompletedProcess:
    state = populate(url) if "…" in block.text else None
    script = work / "block.sh"
    script.write_text(SH_PRELUDE + rewrite_sh(block.text, url, state))
    return subprocess.run(["bash", str(script)], cwd=work, env=environment(work, url), capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def run_python(block: Block, work: Path, url: str) -> subprocess.CompletedProcess:
    source = with_address(block.text, url)
    env = environment(work, url)
    if re.search(r"(?m)^def test_", source):
        path = work / "test_block.py"
        path.write_text(source)
        (work / "pytest.ini").write_text("[pytest]\n")  # this directory is the rootdir, not tests/python
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_workmail_pat.plugin",
                   str(path)]
    else:
        path = work / "block.py"
        path.write_text(source)
        command = [sys.executable, str(path)]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


def run_yaml(block: Block, work: Path, url: str) -> subprocess.CompletedProcess:
    doc = yaml.safe_load(block.text)
    if not (isinstance(doc, dict) and "organizations" in doc):
        pytest.fail(f"{block.id}: a ```yaml block that is not a seed file (no `organizations:`), so this test does not "
                    f"know how to run it." + author_help(block))
    path = work / "seed.yaml"
    path.write_text(block.text)
    return subprocess.run([BIN, "seed", "--database", f"sqlite:{work / 'seeded.db'}", str(path)], cwd=work,
                          env=environment(work, url), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


RUNNERS = {"sh": run_sh, "python": run_python, "yaml": run_yaml}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_block(block: Block, tmp_path):
    reason = skip_reason(block)
    if reason:
        RESULTS[block.id] = "skipped"
        pytest.skip(f"listed in SKIP: {reason}")
    srv = fresh_server(tmp_path)
    try:
        r = RUNNERS[block.lang](block, tmp_path, srv.url)
    finally:
        srv.stop(settle=0)
    if r.returncode != 0:
        RESULTS[block.id] = "failed"
        pytest.fail(
            f"{block.id} exited with {r.returncode}.\n--- block ---\n{block.text}--- stdout ---\n{r.stdout[-3000:]}"
            f"\n--- stderr ---\n{r.stderr[-3000:]}" + author_help(block),
            pytrace=False,
        )
    RESULTS[block.id] = "ran"


def test_the_readme_serve_example_keeps_its_state_where_it_says(tmp_path):
    """`cargo run --release -- serve` keeps its state in ./workmail-pat.db with its key files beside it."""
    [block] = [b for b in BLOCKS if b.file == "README.md" and "cargo run --release -- serve" in b.text]
    srv = fresh_server(tmp_path)
    try:
        r = run_sh(block, tmp_path, srv.url)
    finally:
        srv.stop(settle=0)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^listening on http://127\.0\.0\.1:\d+$", r.stdout, re.M), r.stdout
    for name in ("workmail-pat.db", "workmail-pat.db.token-key", "workmail-pat.db.pepper"):
        assert (tmp_path / name).exists(), name


def test_every_skip_entry_is_used():
    """A SKIP entry whose block is gone (or was reworded) would silently widen what is not run."""
    stale = [(f, p) for f, p, _ in SKIP if not any(b.file == f and p in b.text for b in BLOCKS)]
    assert stale == [], f"SKIP entries that match no block (remove or update them): {stale}"


def test_the_blocks_are_found():
    langs = {b.lang for b in BLOCKS}
    assert langs == set(LANGS), langs
    assert len(BLOCKS) >= 12, [b.id for b in BLOCKS]


def test_zz_report_count(capsys):
    ran = sorted(k for k, v in RESULTS.items() if v == "ran")
    skipped = sorted(k for k, v in RESULTS.items() if v == "skipped")
    line = (f"front door: {len(ran)} of {len(BLOCKS)} code blocks run, {len(skipped)} listed as not runnable here, "
            f"{len(BLOCKS) - len(ran) - len(skipped)} failed or not reached")
    with capsys.disabled():
        print("\n" + line)
    target = REPO / "target"
    if target.is_dir():
        (target / "frontdoor-count.txt").write_text(line + "\n" + "\n".join(f"ran {b}" for b in ran) + "\n")
