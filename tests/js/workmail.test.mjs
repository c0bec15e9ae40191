// AWS SDK for JavaScript v3 (@aws-sdk/client-workmail) against the real `workmail-pat` binary.
//
// Starts `workmail-pat serve` on 127.0.0.1:0 with a temporary SQLite file, drives it with the unmodified SDK (and
// the self-service web API through built-in fetch), then stops it with SIGTERM and checks it exits cleanly.
//
// Binary: $WORKMAIL_PAT_BIN, else ../../target/debug/workmail-pat relative to this file.
// Run from the repo root: npm ci --prefix tests/js --no-audit --no-fund && node --test tests/js/

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import {
  CreateOrganizationCommand,
  CreateUserCommand,
  DeletePersonalAccessTokenCommand,
  DescribeOrganizationCommand,
  GetPersonalAccessTokenMetadataCommand,
  InvalidParameterException,
  ListPersonalAccessTokensCommand,
  OrganizationNotFoundException,
  PutIdentityProviderConfigurationCommand,
  RegisterToWorkMailCommand,
  ResourceNotFoundException,
  WorkMailClient,
  WorkMailServiceException,
  paginateListPersonalAccessTokens,
} from "@aws-sdk/client-workmail";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.WORKMAIL_PAT_BIN
  ? path.resolve(process.env.WORKMAIL_PAT_BIN)
  : path.resolve(HERE, "../../target/debug/workmail-pat");

const REGION = "us-east-1";
const PASSWORD = "Passw0rd!Aa";
const LIFETIME_DAYS = 90;
const TOKEN_COUNT = 25;
const PAGE_SIZE = 7;
const DAY_MS = 24 * 60 * 60 * 1000;
const IDC_INSTANCE_ARN = "arn:aws:sso:::instance/ssoins-1111111111111111";
const IDC_APPLICATION_ARN =
  "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";

// ---------------------------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------------------------

/** Starts `workmail-pat serve` and resolves once it printed its listening line. */
async function startServer(dbPath) {
  assert.ok(existsSync(BIN), `workmail-pat binary not found at ${BIN} (build it or set WORKMAIL_PAT_BIN)`);
  const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--database", `sqlite:${dbPath}`], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-20000); // keep the tail for diagnostics
  });
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const stdoutLines = [];
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server printed no listening line within 20 s; stderr:\n${stderr}`));
    }, 20000);
    lines.on("line", (line) => {
      stdoutLines.push(line);
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      if (m && Number(m[2]) > 0) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
  });
  return { child, url, exited, stdoutLines, stderr: () => stderr };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/** A call to the self-service web API (not AWS); returns { status, body }. */
async function web(baseUrl, method, route, body, bearer) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(baseUrl + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Runs `fn`, expects it to reject with a modelled WorkMail error of class `cls`; returns the error. */
async function expectServiceError(fn, cls) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${cls.name}, but the call succeeded`);
  assert.equal(err.name, cls.name, `expected ${cls.name}, got ${err.name}: ${err.message}`);
  assert.ok(err instanceof cls, `error is not an instance of ${cls.name}`);
  assert.ok(err instanceof WorkMailServiceException, "error is not a WorkMailServiceException");
  assert.equal(err.$fault, "client");
  assert.equal(err.$metadata.httpStatusCode, 400);
  assert.equal(typeof err.$metadata.requestId, "string");
  assert.ok(err.$metadata.requestId.length > 0, "requestId is empty on the error");
  assert.equal(typeof err.message, "string");
  assert.ok(err.message.length > 0, "error message is empty");
  return err;
}

/** (DateCreated, PersonalAccessTokenId) order of two summaries: negative, zero or positive. */
function compareSummaries(a, b) {
  const d = a.DateCreated.getTime() - b.DateCreated.getTime();
  if (d !== 0) return d;
  return a.PersonalAccessTokenId < b.PersonalAccessTokenId ? -1 : a.PersonalAccessTokenId > b.PersonalAccessTokenId ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------------------

describe("workmail-pat with @aws-sdk/client-workmail", () => {
  let tmp;
  let server;
  let client;
  let orgId;
  let userId;
  /** Web API 201 bodies of the tokens created, by id. */
  const created = new Map();

  before(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), "workmail-pat-js-"));
    server = await startServer(path.join(tmp, "wm.db"));
    client = new WorkMailClient({
      endpoint: server.url,
      region: REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1, // a retried 5xx would hide a server bug
    });
  });

  after(() => {
    client?.destroy();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test("set up an organization, a user and an ACTIVE PAT configuration", async () => {
    const alias = `jssdk-${randomBytes(4).toString("hex")}`;
    const org = await client.send(new CreateOrganizationCommand({ Alias: alias }));
    assert.match(org.OrganizationId, /^m-[0-9a-f]{32}$/);
    assert.equal(typeof org.$metadata.requestId, "string");
    assert.ok(org.$metadata.requestId.length > 0);
    orgId = org.OrganizationId;

    const described = await client.send(new DescribeOrganizationCommand({ OrganizationId: orgId }));
    assert.equal(described.OrganizationId, orgId);
    assert.equal(described.Alias, alias);
    assert.equal(described.State, "Active");
    assert.equal(described.DefaultMailDomain, `${alias}.awsapps.com`);

    const user = await client.send(
      new CreateUserCommand({ OrganizationId: orgId, Name: "alice", DisplayName: "Alice", Password: PASSWORD }),
    );
    userId = user.UserId;
    assert.match(userId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    await client.send(
      new RegisterToWorkMailCommand({ OrganizationId: orgId, EntityId: userId, Email: `alice@${alias}.awsapps.com` }),
    );
    await client.send(
      new PutIdentityProviderConfigurationCommand({
        OrganizationId: orgId,
        AuthenticationMode: "IDENTITY_PROVIDER_AND_DIRECTORY",
        IdentityCenterConfiguration: { InstanceArn: IDC_INSTANCE_ARN, ApplicationArn: IDC_APPLICATION_ARN },
        PersonalAccessTokenConfiguration: { Status: "ACTIVE", LifetimeInDays: LIFETIME_DAYS },
      }),
    );
  });

  test(`create ${TOKEN_COUNT} tokens through the web API`, async () => {
    assert.ok(orgId, "setup did not run");
    const session = await web(server.url, "POST", "/webapp/api/sessions", {
      OrganizationId: orgId,
      Username: "alice",
      Password: PASSWORD,
    });
    assert.equal(session.status, 200, JSON.stringify(session.body));
    assert.equal(session.body.UserId, userId);
    const bearer = session.body.SessionToken;
    assert.equal(typeof bearer, "string");

    for (let i = 0; i < TOKEN_COUNT; i++) {
      const name = `js-token-${String(i).padStart(2, "0")}`;
      const res = await web(server.url, "POST", "/webapp/api/personal-access-tokens", { Name: name }, bearer);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.Name, name);
      assert.match(res.body.Token, /^wmpat_[A-Za-z0-9]{46}$/);
      assert.equal(typeof res.body.DateCreated, "number");
      assert.ok(!created.has(res.body.PersonalAccessTokenId), "duplicate PersonalAccessTokenId");
      created.set(res.body.PersonalAccessTokenId, res.body);
    }
    assert.equal(created.size, TOKEN_COUNT);
  });

  test(`paginateListPersonalAccessTokens (pageSize ${PAGE_SIZE}) returns every token once, in order`, async () => {
    assert.equal(created.size, TOKEN_COUNT, "tokens were not created");
    const pages = [];
    for await (const page of paginateListPersonalAccessTokens(
      { client, pageSize: PAGE_SIZE },
      { OrganizationId: orgId },
    )) {
      pages.push(page);
    }

    assert.equal(pages.length, Math.ceil(TOKEN_COUNT / PAGE_SIZE));
    pages.forEach((page, i) => {
      const isLast = i === pages.length - 1;
      assert.ok(Array.isArray(page.PersonalAccessTokenSummaries), `page ${i} has no summaries array`);
      assert.ok(page.PersonalAccessTokenSummaries.length <= PAGE_SIZE, `page ${i} is larger than ${PAGE_SIZE}`);
      assert.equal(typeof page.$metadata.requestId, "string");
      if (isLast) {
        assert.equal(page.NextToken, undefined, "the last page has a NextToken");
      } else {
        assert.equal(typeof page.NextToken, "string", `page ${i} (not last) has no NextToken`);
        assert.equal(page.PersonalAccessTokenSummaries.length, PAGE_SIZE, `page ${i} is short`);
      }
    });

    const listed = pages.flatMap((p) => p.PersonalAccessTokenSummaries);
    assert.equal(listed.length, TOKEN_COUNT);
    const ids = listed.map((s) => s.PersonalAccessTokenId);
    assert.equal(new Set(ids).size, ids.length, "a token appears more than once");
    assert.deepEqual(new Set(ids), new Set(created.keys()), "listed tokens differ from the created ones");

    for (const s of listed) {
      assert.ok(s.DateCreated instanceof Date, "DateCreated is not a Date");
      assert.ok(!Number.isNaN(s.DateCreated.getTime()), "DateCreated is an invalid Date");
      assert.ok(s.ExpiresTime instanceof Date, "ExpiresTime is not a Date");
      assert.equal(s.DateLastUsed, undefined, "an unused token has DateLastUsed");
      const c = created.get(s.PersonalAccessTokenId);
      assert.equal(s.Name, c.Name);
      assert.equal(s.UserId, userId);
      assert.equal(s.DateCreated.getTime(), Math.round(c.DateCreated * 1000));
      assert.equal(s.ExpiresTime.getTime(), Math.round(c.ExpiresTime * 1000));
      assert.equal(s.ExpiresTime.getTime() - s.DateCreated.getTime(), LIFETIME_DAYS * DAY_MS);
      assert.deepEqual([...s.Scopes].sort(), [...c.Scopes].sort());
    }
    for (let i = 1; i < listed.length; i++) {
      assert.ok(
        compareSummaries(listed[i - 1], listed[i]) < 0,
        `not in (DateCreated, PersonalAccessTokenId) order at ${i}: ` +
          `${listed[i - 1].DateCreated.toISOString()} ${listed[i - 1].PersonalAccessTokenId} then ` +
          `${listed[i].DateCreated.toISOString()} ${listed[i].PersonalAccessTokenId}`,
      );
    }
  });

  test("GetPersonalAccessTokenMetadata: known token matches, unknown id is ResourceNotFoundException", async () => {
    const [id, c] = created.entries().next().value;
    const meta = await client.send(
      new GetPersonalAccessTokenMetadataCommand({ OrganizationId: orgId, PersonalAccessTokenId: id }),
    );
    assert.equal(meta.$metadata.httpStatusCode, 200);
    assert.equal(typeof meta.$metadata.requestId, "string");
    assert.ok(meta.$metadata.requestId.length > 0, "requestId is empty on success");
    assert.equal(meta.PersonalAccessTokenId, id);
    assert.equal(meta.UserId, userId);
    assert.equal(meta.Name, c.Name);
    assert.ok(meta.DateCreated instanceof Date);
    assert.equal(meta.DateCreated.getTime(), Math.round(c.DateCreated * 1000));
    assert.ok(meta.ExpiresTime instanceof Date);
    assert.equal(meta.ExpiresTime.getTime(), Math.round(c.ExpiresTime * 1000));
    assert.equal(meta.DateLastUsed, undefined);
    assert.deepEqual([...meta.Scopes].sort(), [...c.Scopes].sort());

    const err = await expectServiceError(
      () =>
        client.send(
          new GetPersonalAccessTokenMetadataCommand({ OrganizationId: orgId, PersonalAccessTokenId: randomUUID() }),
        ),
      ResourceNotFoundException,
    );
    assert.notEqual(err.$metadata.requestId, meta.$metadata.requestId, "request ids repeat");
  });

  test("DeletePersonalAccessToken, then Get is ResourceNotFoundException and the list shrinks", async () => {
    const ids = [...created.keys()];
    const victim = ids[Math.floor(ids.length / 2)];
    const del = await client.send(
      new DeletePersonalAccessTokenCommand({ OrganizationId: orgId, PersonalAccessTokenId: victim }),
    );
    assert.equal(del.$metadata.httpStatusCode, 200);

    await expectServiceError(
      () =>
        client.send(new GetPersonalAccessTokenMetadataCommand({ OrganizationId: orgId, PersonalAccessTokenId: victim })),
      ResourceNotFoundException,
    );

    const all = await client.send(new ListPersonalAccessTokensCommand({ OrganizationId: orgId, MaxResults: 100 }));
    assert.equal(all.NextToken, undefined);
    const remaining = all.PersonalAccessTokenSummaries.map((s) => s.PersonalAccessTokenId);
    assert.equal(remaining.length, TOKEN_COUNT - 1);
    assert.ok(!remaining.includes(victim), "the deleted token is still listed");
  });

  test("DescribeOrganization of an unknown organization is OrganizationNotFoundException", async () => {
    const unknown = `m-${randomBytes(16).toString("hex")}`;
    await expectServiceError(
      () => client.send(new DescribeOrganizationCommand({ OrganizationId: unknown })),
      OrganizationNotFoundException,
    );
  });

  test("ListPersonalAccessTokens with MaxResults 101 is InvalidParameterException", async () => {
    const err = await expectServiceError(
      () => client.send(new ListPersonalAccessTokensCommand({ OrganizationId: orgId, MaxResults: 101 })),
      InvalidParameterException,
    );
    assert.match(err.message, /MaxResults/);
  });

  test("ListPersonalAccessTokens with an invalid NextToken is InvalidParameterException", async () => {
    // A real token, altered, and one that was never a token.
    const first = await client.send(new ListPersonalAccessTokensCommand({ OrganizationId: orgId, MaxResults: 5 }));
    assert.equal(typeof first.NextToken, "string");
    const t = first.NextToken;
    const flipped = t.slice(0, -2) + (t.at(-2) === "A" ? "B" : "A") + t.at(-1);
    for (const bad of [flipped, "not-a-next-token"]) {
      const err = await expectServiceError(
        () => client.send(new ListPersonalAccessTokensCommand({ OrganizationId: orgId, NextToken: bad })),
        InvalidParameterException,
      );
      assert.match(err.message, /NextToken is invalid or has expired/);
    }
  });

  test("SIGTERM stops the server with exit code 0", async () => {
    client.destroy();
    assert.ok(server.child.kill("SIGTERM"), "could not signal the server");
    const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 25000).unref());
    const result = await Promise.race([server.exited, timeout]);
    assert.notEqual(result, "timeout", "server did not exit within 25 s of SIGTERM");
    assert.deepEqual(result, { code: 0, signal: null }, `unclean exit; stderr:\n${server.stderr()}`);
    assert.deepEqual(server.stdoutLines.length, 1, `stdout had extra lines: ${server.stdoutLines.join("\n")}`);
  });
});
