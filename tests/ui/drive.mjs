// Drives `baton ui` in headless Chromium (the distribution's) with playwright-core, for
// the integration tests (tests/integration/ui/browser.rs). One scenario per run:
//
//   node drive.mjs SCENARIO URL SHOTS_DIR [ARG…]
//
// Environment: BATON_TEST_BROWSER (a node_modules folder holding playwright-core),
// CHROMIUM (default /usr/bin/chromium), BATON_BIN and BATON_WS (to drop a brief).
// It prints one JSON line of what it measured, and exits 1 with the reason on failure.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const require = createRequire(join(process.env.BATON_TEST_BROWSER, "/"));
const { chromium } = require("playwright-core");
const [scenario, url, shots, ...args] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });

function fail(why) { throw new Error(why); }
async function shot(name) { await page.screenshot({ path: join(shots, name + ".png"), fullPage: false }); }
const base = url.split("?")[0];

try {
  // The token is in the URL once; the cookie carries it from then on.
  await page.goto(url);
  await page.waitForSelector("#agents", { timeout: 10000 });
  await page.waitForSelector("#live.on", { timeout: 10000 });
  const out = { scenario };

  if (scenario === "feed") {
    await page.evaluate(() => { window.__notReloaded = true; });
    const name = args[0];
    const file = join(tmpdir(), name);
    writeFileSync(file, "# " + name + "\n\nA brief dropped while the page watches.\n");
    const t0 = Date.now();
    execFileSync(process.env.BATON_BIN, ["-w", process.env.BATON_WS, "drop", file]);
    await page.waitForSelector(`#feed [data-row] a[href="#/artifact/${encodeURIComponent("briefs/" + name)}"]`, { timeout: 5000 });
    out.appeared_ms = Date.now() - t0;
    // And its task, folded into one row, ends done.
    await page.waitForFunction((n) => [...document.querySelectorAll("#feed [data-task]")]
      .some(r => r.textContent.includes("briefs/" + n) && r.querySelector('[data-status="done"]')), name, { timeout: 10000 });
    if (!(await page.evaluate(() => window.__notReloaded))) fail("the page reloaded");
    await shot("now");
  } else if (scenario === "approve") {
    const task = args[0];
    await page.goto(base + "#/task/" + task);
    await page.waitForSelector('button[data-action="approve"]', { timeout: 10000 });
    await page.fill('input[name="note"]', "Looks right.");
    await shot("task-held");
    await page.click('button[data-action="approve"]');
    await page.waitForFunction(() => document.querySelector("#task h2 [data-status]")?.dataset.status === "done", null, { timeout: 10000 });
  } else if (scenario === "tree") {
    const task = args[0];
    await page.goto(base + "#/task/" + task);
    await page.waitForSelector("#tree [data-node]", { timeout: 10000 });
    // The join of the manager adds its node when it runs; wait for the whole tree.
    await page.waitForFunction(() => [...document.querySelectorAll("#tree .box")]
      .filter(b => b.querySelector("b")?.textContent === "worker").length >= 3, null, { timeout: 10000 });
    out.nodes = await page.evaluate(() => [...document.querySelectorAll("#tree .box")].map(b => ({
      agent: b.querySelector("b").textContent,
      task: b.dataset.node,
      depth: (() => { let d = 0, e = b; while ((e = e.parentElement?.closest("ul"))) d++; return d; })(),
    })));
    await shot("tree");
  } else if (scenario === "search") {
    const [query, want] = args;
    await page.goto(base + "#/search?q=" + encodeURIComponent(query));
    await page.waitForSelector(`#results [data-hit="${want}"]`, { timeout: 10000 });
    out.marked = await page.locator(`#results [data-hit="${want}"] mark`).count();
    await shot("search");
    // The hit leads to the artifact: rendered, with its versions and a diff.
    await page.click(`#results [data-hit="${want}"] a[href^="#/artifact/"]`);
    await page.waitForSelector("#versions [data-version]", { timeout: 10000 });
    out.versions = await page.locator("#versions [data-version]").count();
    if (out.versions > 1) {
      await page.click("text=Show");
      await page.waitForSelector("#diff .insert", { timeout: 10000 });
    }
    await shot("artifact");
  } else {
    fail("no scenario " + scenario);
  }
  if (problems.length) fail(problems.join("; "));
  console.log(JSON.stringify(out));
  await browser.close();
} catch (e) {
  console.error(e.message, problems.join("; "));
  await shot("failed-" + scenario).catch(() => {});
  await browser.close();
  process.exit(1);
}
