// The browser half of bench/ui.sh: prints one number (ms) per measurement.
//   node ui.mjs latency URL WORKSPACE N   journal append → entry in an EventSource
//   node ui.mjs paint URL WORKSPACE N     navigation → now and the feed drawn
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const require = createRequire(join(process.env.BATON_TEST_BROWSER, "/"));
const { chromium } = require("playwright-core");
const [what, url, ws, n] = process.argv.slice(2);
const baton = join(process.cwd(), "target/release/baton");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage();
await page.goto(url);
await page.waitForSelector("#agents");
const out = [];
if (what === "latency") {
  // BARE=1: the stream on a page that draws nothing (what the server alone costs).
  if (process.env.BARE) await page.goto(url.split("?")[0] + "assets/icon.svg");
  // The page's own stream, as the page opens it; each entry's delay from its `ts`.
  await page.evaluate(() => {
    window.__delays = [];
    const es = new EventSource("/events");
    es.addEventListener("entry", (m) => {
      const e = JSON.parse(m.data);
      if (e.kind === "artifact" && e.by === "human") window.__delays.push(Date.now() - Date.parse(e.ts));
    });
    return new Promise((ok) => { es.onopen = ok; });
  });
  for (let i = 0; i < Number(n); i++) {
    const file = join(tmpdir(), `ui-bench-${process.pid}-${i}.md`);
    writeFileSync(file, `# brief ${i}\n`);
    execFileSync(process.env.BATON_BIN || baton, ["-w", ws, "drop", file], { stdio: "ignore" });
    await page.waitForTimeout(20);
  }
  await page.waitForFunction((k) => window.__delays.length >= k, Number(n), { timeout: 30000 });
  out.push(...await page.evaluate(() => window.__delays));
} else {
  const base = url.split("?")[0];
  for (let i = 0; i < Number(n); i++) {
    const fresh = await browser.newPage();
    await fresh.context().addCookies(await page.context().cookies());
    const t0 = Date.now();
    await fresh.goto(base);
    await fresh.waitForSelector("#agents");
    await fresh.waitForSelector("#feed [data-row]");
    out.push(Date.now() - t0);
    await fresh.close();
  }
}
console.log(out.join(" "));
await browser.close();
