"""The pytest plugin (registered through the `pytest11` entry point `workmail_pat`).

Fixtures:

* ``workmail_server`` (function scope): the running :class:`WorkMailServer` for this test. While the test runs,
  ``AWS_ENDPOINT_URL_WORKMAIL``, dummy credentials (account 000000000000) and the region (us-east-1) are set in the
  environment, so ``boto3.client("workmail")`` and the AWS CLI talk to it. State is reset before the test when the
  test is marked ``@pytest.mark.workmail_reset`` or pytest runs with ``--workmail-reset`` (ini:
  ``workmail_reset = true``); a clock the test moved is always put back afterwards.
* ``workmail_reset``: the same server, reset (all state, real time) before the test.
* ``workmail_user``: a registered user, with a password, in a fresh organization with an ACTIVE PAT configuration
  (30-day lifetime); ``workmail_user.create_token("laptop")`` creates a token. Needs boto3.
* ``workmail_server_session`` (session scope): the one server of this pytest process. Under pytest-xdist every
  worker is its own process, so every worker gets its own server and tests never see another worker's state.
"""

from __future__ import annotations

import shlex
import warnings

import pytest

from .server import WorkMailServer, WorkMailServerError, WorkMailUser


def pytest_addoption(parser):
    group = parser.getgroup("workmail-pat", "workmail-pat server fixture")
    group.addoption(
        "--workmail-pat-bin",
        dest="workmail_pat_bin",
        default=None,
        help="the workmail-pat binary to run (default: $WORKMAIL_PAT_BIN, else the one installed with the plugin)",
    )
    group.addoption(
        "--workmail-reset",
        dest="workmail_reset",
        action="store_true",
        default=None,
        help="reset the workmail-pat server's state before every test that uses the workmail_server fixture",
    )
    parser.addini("workmail_reset", type="bool", default=False,
                  help="reset the workmail-pat server's state before every test that uses workmail_server")
    parser.addini("workmail_seed", default=None,
                  help="a seed file (YAML or JSON) the workmail-pat server loads at start (relative to rootdir)")
    parser.addini("workmail_args", default="", help="extra arguments for `workmail-pat serve`")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "workmail_reset: reset the workmail-pat server's state (and clock) before this test"
    )


def _reset_requested(request) -> bool:
    if request.node.get_closest_marker("workmail_reset") is not None:
        return True
    opt = request.config.getoption("workmail_reset")
    return bool(opt) if opt is not None else bool(request.config.getini("workmail_reset"))


@pytest.fixture(scope="session")
def workmail_server_session(request, tmp_path_factory):
    config = request.config
    seed = config.getini("workmail_seed") or None
    if seed:
        seed = str(config.rootpath / seed)
    logdir = tmp_path_factory.mktemp("workmail-pat")
    server = WorkMailServer(
        binary=config.getoption("workmail_pat_bin"),
        seed=seed,
        extra_args=shlex.split(config.getini("workmail_args") or ""),
        log_path=logdir / "server.log",
    )
    server.start()
    try:
        yield server
    finally:
        code = server.stop()
        if code not in (0, None):
            warnings.warn(f"workmail-pat exited with code {code}; its log: {logdir / 'server.log'}", stacklevel=1)


@pytest.fixture
def workmail_server(request, workmail_server_session, monkeypatch):
    server = workmail_server_session
    if not server.running:
        raise WorkMailServerError(f"the workmail-pat server has exited; its log:\n{server.log()}")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    if _reset_requested(request):
        server.reset()
    yield server
    if server.running:
        server.reset_clock()


@pytest.fixture
def workmail_reset(workmail_server):
    workmail_server.reset()
    return workmail_server


@pytest.fixture
def workmail_user(workmail_server) -> WorkMailUser:
    return workmail_server.create_user()
