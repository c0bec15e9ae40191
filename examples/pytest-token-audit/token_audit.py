#!/usr/bin/env python3
"""Audit an Amazon WorkMail organization's personal access tokens.

Lists every token in the organization (boto3, `ListPersonalAccessTokens`) and reports the ones that have expired,
the ones that expire within `--soon-days` days, and the ones that have never been used. Exit code 1 when any
token is expired or expiring soon, so it can gate a cron job or a CI step.

    python token_audit.py --organization-id m-0123... [--soon-days 7] [--json]

boto3 finds the endpoint, credentials and region the usual way (`AWS_ENDPOINT_URL_WORKMAIL`, `AWS_PROFILE`, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Optional

import boto3

DAY = 86400


@dataclass
class Finding:
    token_id: str
    name: str
    user: str
    expires: float
    last_used: Optional[float]


@dataclass
class Report:
    organization_id: str
    now: float
    total: int = 0
    expired: list = field(default_factory=list)
    expiring_soon: list = field(default_factory=list)
    never_used: list = field(default_factory=list)

    @property
    def problems(self) -> bool:
        return bool(self.expired or self.expiring_soon)


def _epoch(value) -> Optional[float]:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _user_names(client, organization_id: str) -> dict:
    names, kwargs = {}, {"OrganizationId": organization_id}
    while True:
        page = client.list_users(**kwargs)
        for u in page.get("Users", []):
            names[u["Id"]] = u.get("Name", u["Id"])
        if not page.get("NextToken"):
            return names
        kwargs["NextToken"] = page["NextToken"]


def list_tokens(client, organization_id: str) -> list:
    tokens, kwargs = [], {"OrganizationId": organization_id, "MaxResults": 100}
    while True:
        page = client.list_personal_access_tokens(**kwargs)
        tokens.extend(page.get("PersonalAccessTokenSummaries", []))
        if not page.get("NextToken"):
            return tokens
        kwargs["NextToken"] = page["NextToken"]


def audit(organization_id: str, client=None, now: Optional[float] = None, soon_days: float = 7) -> Report:
    """`now` defaults to the local clock; pass the time to judge expiry against (tests pass the server's)."""
    client = client or boto3.client("workmail")
    now = time.time() if now is None else now
    names = _user_names(client, organization_id)
    report = Report(organization_id=organization_id, now=now)
    for t in list_tokens(client, organization_id):
        report.total += 1
        f = Finding(
            token_id=t["PersonalAccessTokenId"],
            name=t["Name"],
            user=names.get(t["UserId"], t["UserId"]),
            expires=_epoch(t["ExpiresTime"]),
            last_used=_epoch(t.get("DateLastUsed")),
        )
        if f.expires <= now:
            report.expired.append(f)
        elif f.expires <= now + soon_days * DAY:
            report.expiring_soon.append(f)
        if f.last_used is None:
            report.never_used.append(f)
    return report


def render(report: Report) -> str:
    def when(ts):
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"

    lines = [f"{report.total} token(s) in {report.organization_id}"]
    for title, items in (("EXPIRED", report.expired), ("EXPIRING SOON", report.expiring_soon),
                         ("NEVER USED", report.never_used)):
        lines.append(f"{title}: {len(items)}")
        for f in items:
            lines.append(f"  {f.user}/{f.name} ({f.token_id}) expires {when(f.expires)}, "
                         f"last used {when(f.last_used)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--organization-id", required=True)
    p.add_argument("--soon-days", type=float, default=7)
    p.add_argument("--now", type=float, default=None, help="judge expiry at this epoch time (default: now)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    report = audit(args.organization_id, now=args.now, soon_days=args.soon_days)
    if args.json:
        doc = asdict(report)
        print(json.dumps(doc, indent=2))
    else:
        print(render(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
