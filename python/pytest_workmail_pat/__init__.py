"""pytest-workmail-pat: the `workmail-pat` server (Amazon WorkMail's personal-access-token API) in a wheel, and a
pytest plugin around it.

Outside pytest::

    from pytest_workmail_pat import WorkMailServer

    with WorkMailServer() as url:
        ...  # boto3.client("workmail", endpoint_url=url, ...)
"""

from .server import (
    DEFAULT_ACCOUNT,
    DEFAULT_PASSWORD,
    DEFAULT_REGION,
    WorkMailServer,
    WorkMailServerError,
    WorkMailUser,
    find_binary,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_PASSWORD",
    "DEFAULT_REGION",
    "WorkMailServer",
    "WorkMailServerError",
    "WorkMailUser",
    "find_binary",
]
