// End-to-end test of the /webapp/ page in a real headless Chromium (Debian's package, driven by playwright-core;
// no browser is downloaded). It starts the real binary, sets up organizations through the AWS API, then works the
// page as a person would: sign in (keyboard only), create a token, read its secret, verify it, see "last used"
// change, revoke it (confirm dialog), sign out; plus a failed sign-in, an INACTIVE and an unconfigured
// organization, cookie flags and CSRF refusals. Screenshots of each state at desktop and phone widths go to
// tests/browser/output/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const BIN = process.env.WORKMAIL_PAT_BIN || path.join(repo, "target", "debug", "workmail-pat");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const OUT = path.join(here, "output");
const PASSWORD = "Correct-Horse-7";
const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

let server;
let base;
let serverLog = "";
let browser;

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--database", "sqlite::memory:"], {
      stdio: ["ignore", "pipe", "pipe"],
      // Debug level, so the check that no secret reaches the log covers every log line the server can write.
      env: { ...process.env, RUST_LOG: "debug" },
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 20000);
    child.stderr.on("data", (d) => {
      err += d;
      serverLog += d;
    });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

// The server's default `--auth accept-any` takes any well-formed SigV4 header without checking the signature.
async function aws(operation, body) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  const res = await fetch(`${base}/`, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `WorkMailService.${operation}`,
      "X-Amz-Date": amzDate,
      Authorization:
        `AWS4-HMAC-SHA256 Credential=AKID/${amzDate.slice(0, 8)}/us-east-1/workmail/aws4_request, ` +
        `SignedHeaders=host;x-amz-date;x-amz-target, Signature=${"0".repeat(64)}`,
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `${operation}: ${JSON.stringify(json)}`);
  return json;
}

/** An organization with one ENABLED user; `status` ACTIVE/INACTIVE, or null for no PAT configuration. */
async function setupOrg(alias, user, status) {
  const { OrganizationId: org } = await aws("CreateOrganization", { Alias: alias });
  const { UserId } = await aws("CreateUser", {
    OrganizationId: org, Name: user, DisplayName: user, Password: PASSWORD,
  });
  await aws("RegisterToWorkMail", { OrganizationId: org, EntityId: UserId, Email: `${user}@${alias}.awsapps.com` });
  if (status) {
    await aws("PutIdentityProviderConfiguration", {
      OrganizationId: org,
      AuthenticationMode: "IDENTITY_PROVIDER_AND_DIRECTORY",
      IdentityCenterConfiguration: {
        InstanceArn: "arn:aws:sso:::instance/ssoins-1111111111111111",
        ApplicationArn: "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111",
      },
      PersonalAccessTokenConfiguration: { Status: status, LifetimeInDays: 5 },
    });
  }
  return org;
}

async function verify(org, username, token) {
  const res = await fetch(`${base}/auth/v1/verify`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ OrganizationId: org, Username: username, Token: token, Scope: "IMAP" }),
  });
  return { status: res.status, body: await res.json() };
}

/** Full-page screenshots of the current state at both widths. */
async function shot(page, name) {
  for (const [label, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: path.join(OUT, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(VIEWPORTS.desktop);
}

async function newPage() {
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  const page = await context.newPage();
  const errors = [];
  // A CSP violation or script error shows up here; the page must run cleanly under its own policy.
  // The 401/403 answers the test provokes on purpose (failed sign-in, CSRF refusal) are logged too; skip those.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[13] /.test(m.text())) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { context, page, errors };
}

// An email address alone names the organization (its verified domain); a bare username opens the folded
// "Organization ID" field and fills it too.
async function signIn(page, org, username, password) {
  await page.goto(`${base}/webapp/`);
  await page.getByLabel("Email address").fill(username);
  await page.getByLabel("Password").fill(password);
  if (!username.includes("@")) {
    await page.getByText("Signing in with a username instead?").click();
    await page.getByLabel("Organization ID").fill(org);
  }
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  ({ child: server, url: base } = await startServer());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
});

test("sign in, create, verify, last used, revoke, sign out", async () => {
  const org = await setupOrg("acme", "alice", "ACTIVE");
  const { context, page, errors } = await newPage();

  // `/` (GET) leads to the page.
  const first = await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, "/webapp/");
  const headers = first.headers();
  assert.match(headers["content-security-policy"], /default-src 'none'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline/);
  assert.equal(headers["x-frame-options"], "DENY");
  assert.equal(headers["cache-control"], "no-store");
  await assert.doesNotReject(page.getByRole("heading", { name: "Sign in" }).waitFor());
  await shot(page, "01-sign-in");

  // A failed sign-in: one generic message, no cookie, the password not refilled.
  await signIn(page, org, "alice", "Wrong-Password-1");
  await page.getByRole("alert").filter({ hasText: "Invalid organization, username or password." }).waitFor();
  assert.equal(await page.getByLabel("Password").inputValue(), "");
  assert.equal(await page.getByLabel("Email address").inputValue(), "alice");
  assert.equal(await page.getByLabel("Organization ID").inputValue(), org);
  assert.deepEqual(await context.cookies(), []);
  await shot(page, "02-sign-in-failed");

  // Sign in with the keyboard only and the email address alone: the first field has focus, Tab moves through the
  // form, Enter submits.
  await page.goto(`${base}/webapp/`);
  assert.equal(await page.evaluate(() => document.activeElement.id), "username");
  await page.keyboard.type("alice@acme.awsapps.com");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "password");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Personal access tokens", level: 1 }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.getByText("alice@acme.awsapps.com").waitFor();

  // Cookie flags: HttpOnly (invisible to scripts), SameSite=Strict; not Secure over plain http.
  const cookies = await context.cookies();
  assert.equal(cookies.length, 1);
  const [cookie] = cookies;
  assert.equal(cookie.name, "wmpat_session");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.secure, false);
  assert.equal(await page.evaluate(() => document.cookie), "");

  // The create form: a "Name" field, the configured default scopes pre-selected, nothing listed yet.
  await page.getByLabel("Name", { exact: true }).waitFor();
  assert.equal(await page.getByLabel("IMAP").isChecked(), true);
  assert.equal(await page.getByLabel("SMTP").isChecked(), true);
  assert.equal(await page.getByLabel("POP3").isChecked(), false);
  await page.getByText("You have no personal access tokens.").waitFor();
  await shot(page, "03-signed-in-no-tokens");

  // CSRF: the same form without its token is refused and creates nothing.
  await page.getByLabel("Name", { exact: true }).fill("forged");
  await page.evaluate(() => document.querySelector("form.create input[name=csrf]").remove());
  const refused = page.waitForResponse((r) => r.url().endsWith("/webapp/tokens"));
  await page.getByRole("button", { name: "Create" }).click();
  assert.equal((await refused).status(), 403);
  await page.getByRole("heading", { name: "Request refused" }).waitFor();
  await shot(page, "04-csrf-refused");
  // …and so are requests carrying the cookie with a wrong or no token, on the form and on the JSON API.
  const wrong = await page.request.post(`${base}/webapp/tokens`, {
    form: { name: "forged", scope: "IMAP", csrf: "0".repeat(64) },
  });
  assert.equal(wrong.status(), 403);
  const apiForged = await page.request.post(`${base}/webapp/api/personal-access-tokens`, {
    data: { Name: "forged" },
  });
  assert.equal(apiForged.status(), 403);
  const listed = await page.request.get(`${base}/webapp/api/personal-access-tokens`);
  assert.equal(listed.status(), 200, "reading with the cookie needs no CSRF token");
  assert.deepEqual((await listed.json()).PersonalAccessTokenSummaries, []);
  await page.goto(`${base}/webapp/`);
  await page.getByText("You have no personal access tokens.").waitFor();

  // Create a token: the secret is shown once, with a Copy button and a plain warning.
  await page.getByLabel("Name", { exact: true }).fill("Thunderbird laptop");
  const created = page.waitForResponse((r) => r.url().endsWith("/webapp/tokens"));
  await page.getByRole("button", { name: "Create" }).click();
  const createdResponse = await created;
  assert.equal(createdResponse.status(), 200);
  assert.equal(createdResponse.headers()["cache-control"], "no-store");
  await page.getByText("It will not be shown again").waitFor();
  const secret = await page.getByLabel("New token secret").inputValue();
  assert.match(secret, /^wmpat_[A-Za-z0-9]{46}$/);
  assert.ok(!page.url().includes(secret), "the secret is never in a URL");
  const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!storage.includes("wmpat_"), "the secret is never in browser storage");
  const copy = page.getByRole("button", { name: "Copy" });
  assert.equal(await copy.isVisible(), true);
  await copy.click();
  await page.locator("#copy-status").filter({ hasText: /Cop/ }).waitFor();
  const row = page.locator("tr", { hasText: "Thunderbird laptop" });
  await row.locator("td.last-used", { hasText: "never" }).waitFor();
  await row.getByText("expires in 5 days").waitFor();
  await row.getByText("Expires soon").waitFor();
  await shot(page, "05-token-created");

  // The secret works for a mail server.
  const ok = await verify(org, "alice", secret);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.ok(ok.body.PersonalAccessTokenId);
  assert.equal((await verify(org, "alice", secret.slice(0, -1) + (secret.endsWith("A") ? "B" : "A"))).status, 401);

  // After a reload (a GET: the page replaced its POST history entry, so nothing is re-sent and no second token is
  // created): the secret is gone for good and "last used" shows a date.
  assert.equal(new URL(page.url()).pathname, "/webapp/");
  const reloaded = await page.reload();
  assert.equal(reloaded.request().method(), "GET");
  assert.equal(await page.locator("tbody tr").count(), 1);
  assert.equal(await page.locator("#new-token-secret").count(), 0);
  assert.ok(!(await page.content()).includes(secret));
  const lastUsed = row.locator("td.last-used");
  await lastUsed.locator("time").waitFor();
  assert.doesNotMatch(await lastUsed.innerText(), /never/);
  assert.match(await lastUsed.locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  await shot(page, "06-last-used");

  // Revoke asks first: dismissing keeps the token, accepting removes it.
  const revoke = page.getByRole("button", { name: "Revoke Thunderbird laptop" });
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await revoke.click();
  assert.match(asked, /Revoke the token “Thunderbird laptop”/);
  assert.equal(await row.count(), 1);
  assert.equal((await verify(org, "alice", secret)).status, 200);
  page.once("dialog", (d) => d.accept());
  await revoke.click();
  await page.getByText("The token was revoked.").waitFor();
  await page.getByText("You have no personal access tokens.").waitFor();
  assert.equal(await page.locator("tr", { hasText: "Thunderbird laptop" }).count(), 0);
  assert.equal((await verify(org, "alice", secret)).status, 401);
  await shot(page, "07-revoked");

  // Sign out: the cookie is deleted and the session is dead server-side.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You have signed out.").waitFor();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.deepEqual(await context.cookies(), []);
  const replay = await fetch(`${base}/webapp/api/personal-access-tokens`, {
    headers: { Authorization: `Bearer ${cookie.value}` },
  });
  assert.equal(replay.status, 401);
  await shot(page, "08-signed-out");

  assert.deepEqual(errors, [], "no script errors or CSP violations");
  assert.match(serverLog, /token_created/, "the server's log is captured");
  assert.ok(!serverLog.includes(secret), "the token secret is never logged");
  assert.ok(!serverLog.includes(cookie.value), "the session token is never logged");
  await context.close();
});

test("an INACTIVE or unconfigured organization is explained instead of offering creation", async () => {
  for (const [alias, status, expected, name] of [
    ["inactive", "INACTIVE", /INACTIVE/, "09-inactive-org"],
    ["noconfig", null, /not configured/, "10-not-configured-org"],
  ]) {
    const org = await setupOrg(alias, "bob", status);
    const { context, page, errors } = await newPage();
    await signIn(page, org, "bob", PASSWORD);
    await page.getByRole("heading", { name: "Personal access tokens are unavailable" }).waitFor();
    await page.getByText(expected).first().waitFor();
    assert.equal(await page.getByLabel("Name", { exact: true }).count(), 0);
    assert.equal(await page.getByRole("button", { name: "Create" }).count(), 0);
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await shot(page, name);
    assert.deepEqual(errors, []);
    await context.close();
  }
});

test("over HTTPS the cookie is Secure with the __Host- prefix; cross-site forms are refused", async () => {
  const org = await setupOrg("tls", "carol", "ACTIVE");
  const form = new URLSearchParams({ organization_id: org, username: "carol", password: PASSWORD });
  const res = await fetch(`${base}/webapp/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https" },
    body: form,
  });
  assert.equal(res.status, 303);
  const setCookie = res.headers.get("set-cookie");
  assert.match(setCookie, /^__Host-wmpat_session=[A-Za-z0-9_-]+; /);
  for (const flag of ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"]) {
    assert.ok(setCookie.split("; ").includes(flag), `${flag} in ${setCookie}`);
  }

  const crossSite = await fetch(`${base}/webapp/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site" },
    body: form,
  });
  assert.equal(crossSite.status, 403);
  assert.equal(crossSite.headers.get("set-cookie"), null);

  // Malformed input gets a clear 4xx page, never a 5xx.
  const notForm = await fetch(`${base}/webapp/sign-in`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  });
  assert.equal(notForm.status, 400);
  const garbage = await fetch(`${base}/webapp/sign-in`, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "%%%&=&password=%FF",
  });
  assert.equal(garbage.status, 401);
});

test("without JavaScript the forms still work and revoking asks on its own page", async () => {
  const org = await setupOrg("nojs", "dave", "ACTIVE");
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop, javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, org, "dave", PASSWORD);
  for (const name of ["first", "second"]) {
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByLabel("New token secret").waitFor();
    // No script, no Copy button (it would do nothing); the secret field is still selectable by hand.
    assert.equal(await page.getByRole("button", { name: "Copy" }).isVisible(), false);
    await page.goto(`${base}/webapp/`);
  }

  await page.getByRole("button", { name: "Revoke first" }).click();
  await page.getByRole("heading", { name: "Revoke “first”?" }).waitFor();
  await shot(page, "11-revoke-confirm-no-js");
  await page.getByRole("button", { name: "Revoke" }).click();
  await page.getByText("The token was revoked.").waitFor();
  assert.equal(await page.locator("tr", { hasText: "first" }).count(), 0);
  assert.equal(await page.locator("tr", { hasText: "second" }).count(), 1);

  // The JSON API with the cookie: refused without X-CSRF-Token, accepted with the page's token.
  const id = await page.locator("tr", { hasText: "second" }).getAttribute("data-token-id");
  const csrf = await page.locator("form.create input[name=csrf]").inputValue();
  const url = `${base}/webapp/api/personal-access-tokens/${id}`;
  assert.equal((await page.request.delete(url)).status(), 403);
  assert.equal((await page.request.delete(url, { headers: { "X-CSRF-Token": "f".repeat(64) } })).status(), 403);
  await page.reload();
  assert.equal(await page.locator("tr", { hasText: "second" }).count(), 1, "a refused request changes nothing");
  assert.equal((await page.request.delete(url, { headers: { "X-CSRF-Token": csrf } })).status(), 204);
  await page.reload();
  await page.getByText("You have no personal access tokens.").waitFor();
  await context.close();
});
