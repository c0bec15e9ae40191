// The HTML audit report (`workmail-pat report --format html`) in a real headless Chromium (Debian's package, driven
// by playwright-core). A store is built with `seed --generate`, the report is written to a file and opened from
// file:// at desktop and phone widths: no horizontal scrolling, no request leaves the page, the three charts and
// the table show the same counts as the JSON report of the same store, and the charts carry their numbers as text
// and their special bars as patterns (a grayscale screenshot is kept to look at). Screenshots go to
// tests/browser/output/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const BIN = process.env.WORKMAIL_PAT_BIN || path.join(repo, "target", "debug", "workmail-pat");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const OUT = path.join(here, "output");
const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };
// Generated tokens are created over the last 300 days and live 365: with these criteria the table has tokens that
// expire soon and tokens unused for long.
const CRITERIA = ["--expiring-within", "90", "--unused-for", "180"];

let dir;
let database;
let org;
let htmlPath;
let browser;

function wmpat(...args) {
  return execFileSync(BIN, args, { encoding: "utf8", maxBuffer: 64 << 20 });
}

function jsonReport(...criteria) {
  const out = wmpat("report", "--database", database, "--organization-id", org, "--format", "json", ...criteria);
  return JSON.parse(out).PersonalAccessTokens;
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  dir = mkdtempSync(path.join(os.tmpdir(), "wmpat-report-"));
  database = `sqlite:${path.join(dir, "report.db")}`;
  // 10 organizations of 60 tokens and 6 users each.
  wmpat("seed", "--database", database, "--generate", "600", "--quiet");
  org = JSON.parse(wmpat("dump", "--database", database)).Organizations[0].OrganizationId;
  htmlPath = path.join(dir, "report.html");
  wmpat("report", "--database", database, "--organization-id", org, "--format", "html", "--output", htmlPath,
    ...CRITERIA);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the file is self-contained: no script, no URL", () => {
  const html = readFileSync(htmlPath, "utf8");
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /https?:\/\//i);
  assert.match(html, /Content-Security-Policy/);
});

for (const [name, viewport] of Object.entries(VIEWPORTS)) {
  test(`report at ${name} width (${viewport.width} px)`, async () => {
    const all = jsonReport();
    const selected = jsonReport(...CRITERIA);
    assert.ok(all.length === 60 && selected.length > 0, `${all.length} tokens, ${selected.length} selected`);

    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const requests = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(htmlPath).href);
    await page.screenshot({ path: path.join(OUT, `report-${name}.png`), fullPage: true });

    // Only the file itself was loaded.
    assert.deepEqual(requests, [pathToFileURL(htmlPath).href]);
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      scripts: document.querySelectorAll("script").length,
    }));
    assert.ok(layout.scrollWidth <= layout.clientWidth, `horizontal scrolling: ${JSON.stringify(layout)}`);
    assert.equal(layout.scripts, 0);

    const charts = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll("figure[data-chart]")].map((f) => {
          const svg = f.querySelector("svg");
          const r = svg.getBoundingClientRect();
          return [f.dataset.chart, {
            role: svg.getAttribute("role"),
            title: svg.querySelector("title")?.textContent,
            width: r.width,
            right: r.right,
            bars: [...svg.querySelectorAll("g.bar")].map((g) => ({
              label: g.dataset.label,
              value: Number(g.dataset.value),
              fill: g.dataset.fill,
              text: g.querySelector("text.count")?.textContent,
              labelText: g.querySelector("text.label")?.textContent,
            })),
          }];
        }),
      ),
    );
    assert.deepEqual(Object.keys(charts).sort(), ["expiry-weeks", "last-use", "per-user"]);
    for (const [id, chart] of Object.entries(charts)) {
      assert.equal(chart.role, "img", id);
      assert.ok(chart.title, `${id} has a title`);
      assert.ok(chart.right <= viewport.width, `${id} fits the page`);
      for (const bar of chart.bars) {
        // Readable without colour: each bar says its number and its label in text.
        assert.equal(bar.text, String(bar.value), `${id}: ${bar.label}`);
        assert.ok(bar.labelText, `${id}: ${bar.label} has a visible label`);
      }
    }
    const sum = (bars) => bars.reduce((n, b) => n + b.value, 0);
    const now = Date.now();

    // Expiry weeks: every token once; already expired ones hatched.
    const expiry = charts["expiry-weeks"].bars;
    assert.equal(sum(expiry), all.length);
    const expired = all.filter((t) => Date.parse(t.ExpiresTime) <= now).length;
    assert.deepEqual(expiry[0], { ...expiry[0], label: "Expired", value: expired, fill: "hatched" });
    const week = (t) => Math.floor((Date.parse(t.ExpiresTime) - now) / (7 * 86400e3));
    const firstWeek = all.filter((t) => week(t) === 0).length;
    assert.equal(expiry[1].value, firstWeek, "the first week's bar");

    // Time since last use: never-used tokens apart, dotted.
    const lastUse = charts["last-use"].bars;
    assert.equal(sum(lastUse), all.length);
    const never = lastUse.at(-1);
    assert.equal(never.label, "Never used");
    assert.equal(never.fill, "dotted");
    assert.equal(never.value, all.filter((t) => t.DateLastUsed === null).length);

    // Per user: at most 20 users, most first, counted as the JSON report does.
    const perUser = new Map();
    for (const t of all) perUser.set(t.Username, (perUser.get(t.Username) || 0) + 1);
    const users = charts["per-user"].bars;
    assert.equal(users.length, Math.min(20, perUser.size));
    for (const bar of users) assert.equal(bar.value, perUser.get(bar.label), bar.label);
    assert.deepEqual(users.map((b) => b.value), users.map((b) => b.value).sort((a, b) => b - a));

    // The table: one row per selected token, each with its reasons as text.
    const table = await page.evaluate(() => {
      const t = document.querySelector("table#tokens");
      const rows = [...t.querySelectorAll("tbody tr")];
      return {
        declared: Number(t.dataset.rows),
        rows: rows.length,
        ids: rows.map((r) => r.querySelector('td[data-label="Token"] .id').textContent),
        reasons: rows.map((r) => r.querySelector('td[data-label="Why"]').textContent.trim()),
        right: Math.max(...rows.map((r) => r.getBoundingClientRect().right)),
      };
    });
    assert.equal(table.declared, selected.length);
    assert.equal(table.rows, selected.length);
    assert.deepEqual(new Set(table.ids), new Set(selected.map((t) => t.PersonalAccessTokenId)));
    for (const r of table.reasons) assert.match(r, /^(EXPIRED|EXPIRING|UNUSED)( (EXPIRED|EXPIRING|UNUSED))*$/);
    assert.ok(table.right <= viewport.width, `table fits: ${table.right}`);

    // The same page without colour, to look at.
    await page.addStyleTag({ content: "html{filter:grayscale(1)}" });
    await page.screenshot({ path: path.join(OUT, `report-${name}-grayscale.png`), fullPage: false });
    await context.close();
  });
}
