// The presence monitor's live dashboard in a real headless Chromium: two monitors and two mesh
// applications run as processes, one application through each monitor; the first monitor's
// page lists both monitors and both applications with their leases, groups and routes (those
// of the other monitor's application shared through service.monitor),
// shows the request and error rates that traffic makes, lists a third application whose name
// is HTML as plain text, and shows an application that is killed leaving within a second.
// With DASHBOARD_SCREENSHOT=<file> it also saves the screenshot that docs/ shows.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Browser, Page } from "puppeteer-core";
import { PostOffice } from "../../mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import type { Platform } from "../../mod.ts";
import {
  connect,
  eventually,
  meshArgs,
  meshMember,
  startMonitor,
  topicsFor,
} from "../_presence.ts";
import type { Client, MonitorProcess } from "../_presence.ts";
import { spawnDeno } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { launchBrowser, noBrowser } from "../_browser.ts";
import type { PageDocument } from "../_browser.ts";
import { sleep } from "../_helpers.ts";

declare const document: PageDocument; // in the functions that run in the page

const skip = noBrowser();
const HOSTILE_NAME = `<img src=x id=pwned onerror="document.title='pwned'">`;

describe("the dashboard in a headless Chromium", { skip }, () => {
  let monitor: MonitorProcess, other: MonitorProcess;
  const apps = new Map<string, { proc: DenoProcess; origin: string }>();
  let tester: { platform: Platform; connector: KafkaConnector };
  let browser: Browser;
  let page: Page;
  let hostile: Client | undefined;
  let traffic = true;
  let trafficDone: Promise<void> = Promise.resolve();
  const shots = mkdtempSync(join(tmpdir(), "minimesh-dashboard-"));

  const row = (origin: string) => `#apps tr[data-origin="${origin}"]`;
  const cell = (origin: string, column: number) =>
    page.$eval(`${row(origin)} td:nth-child(${column})`, (td) => td.textContent ?? "");

  before(async () => {
    const t = topicsFor("dashboard");
    monitor = await startMonitor(t.args);
    other = await startMonitor(t.args);
    const mesh = meshArgs(monitor.port, t.args);
    await Promise.all(["dash-a", "dash-b"].map(async (name) => {
      const through = meshArgs(name === "dash-a" ? monitor.port : other.port, t.args);
      const proc = spawnDeno("tests/fixtures/mesh_app.ts", [
        `-Dapplication.name=${name}`,
        "-Dserver.port=0",
        ...through,
      ]);
      const origin = /JOINED (\w+)/.exec(await proc.waitFor(/^JOINED /, 60_000))![1];
      apps.set(name, { proc, origin });
    }));
    tester = await meshMember("dash-tester", mesh);
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
    await page.goto(`http://127.0.0.1:${monitor.port}/`, { waitUntil: "load" });
  });

  after(async () => {
    traffic = false;
    await trafficDone;
    hostile?.ws.close();
    await browser?.close();
    await tester?.connector.stop();
    for (const { proc } of apps.values()) await proc.stop("SIGKILL").catch(() => {});
    await other?.stop();
    await monitor?.stop();
    rmSync(shots, { recursive: true, force: true });
  });

  it("lists the monitors and the running applications with lease, group and routes", async () => {
    await page.waitForFunction(
      () => document.querySelector("#n-monitors")?.textContent === "2",
      { timeout: 20_000 },
    );
    for (const [name, { origin }] of apps) {
      await page.waitForSelector(row(origin), { timeout: 10_000 });
      assert.equal(await cell(origin, 1), name);
      assert.match(await cell(origin, 4), /^[\w.-]+-\d{3}$/, "its lease");
      assert.equal(await cell(origin, 5), "1", "its closed user group");
    }
    // Routes arrive with an application's first report, just after its join; dash-b's through
    // the other monitor's share (every 5 s).
    for (const [name, { origin }] of apps) {
      await page.waitForFunction(
        (sel, route) => document.querySelector(sel)?.textContent?.includes(route),
        { timeout: 15_000 },
        `${row(origin)} td.routes`,
        `${name}.whoami`,
      );
      const routes = await cell(origin, 12);
      assert.ok(routes.includes("demo.echo"), routes);
      assert.ok(!routes.includes("demo.secret"), "a private route is not listed");
    }
    // Each instance links to its own endpoints (its HTTP port, from its reports).
    const { proc, origin: a } = apps.get("dash-a")!;
    const port = /^HTTP (\d+)/.exec(proc.logs.find((l) => /^HTTP \d+/.test(l)) ?? "")?.[1];
    await page.waitForSelector(`${row(a)} td:nth-child(11) a`, { timeout: 15_000 });
    const info = await page.$eval(`${row(a)} td:nth-child(11) a`, (l) => l.getAttribute("href"));
    assert.match(info ?? "", new RegExp(`^http://[^/]+:${port}/info$`));
    const res = await fetch((info ?? "").replace(/\[::ffff:([\d.]+)\]/, "$1"));
    assert.equal(res.status, 200, `${info} answers`);
    await res.body?.cancel();
    const status = await page.$eval("#status", (s) => s.textContent);
    assert.equal(status, "live");
  });

  it("shows an application's request and error rates as traffic flows", async () => {
    const { origin } = apps.get("dash-a")!;
    const po = new PostOffice({}, tester.platform);
    let sent = 0;
    // Requests to dash-a only, and every fifth one fails there (demo.call of a missing route).
    trafficDone = (async () => {
      while (traffic) {
        const failing = sent % 5 === 4;
        await po.request(
          failing
            ? { to: `demo.call@${origin}`, headers: { target: "no.such.route" }, body: "x" }
            : { to: "dash-a.whoami" },
          { timeout: 5000 },
        ).catch(() => {});
        sent++;
        await sleep(20);
      }
    })();
    // A rate needs two reports (every 5 s) with traffic between them.
    await page.waitForFunction(
      (sel) => {
        const cells = document.querySelectorAll(sel);
        return Number(cells[7]?.textContent) > 0 && Number(cells[8]?.textContent) > 0;
      },
      { timeout: 20_000 },
      `${row(origin)} td`,
    );
    const rate = Number(await cell(origin, 8));
    const errors = Number(await cell(origin, 9));
    const file = process.env.DASHBOARD_SCREENSHOT ?? join(shots, "dashboard.png");
    await page.screenshot({ path: file as `${string}.png`, fullPage: true });
    console.log(`dashboard: dash-a ${rate} events/s, ${errors} errors/s (${sent} requests sent)`);
    assert.ok(errors < rate, `${errors} errors/s of ${rate} events/s`);
    assert.equal(
      Number(await cell(apps.get("dash-b")!.origin, 9)) || 0,
      0,
      "dash-b served nothing that failed",
    );
  });

  it("paints the state at once, and a closed tab is no warning", async () => {
    const tab = await browser.newPage();
    // No wait for the stream: the page as loaded already shows the mesh.
    await tab.goto(`http://127.0.0.1:${monitor.port}/`, { waitUntil: "load" });
    assert.equal(await tab.$eval("#status", (s) => s.textContent), "live");
    assert.equal(await tab.$eval("#n-monitors", (s) => s.textContent), "2");
    assert.match(await tab.$eval("#h-kafka", (s) => s.textContent ?? ""), /Kafka reachable/);
    const warned = monitor.logs.length;
    await tab.close();
    await sleep(500);
    const after = monitor.logs.slice(warned).filter((l) => /WRN|ERR/.test(l));
    assert.deepEqual(after, [], "closing a tab logged a warning");
  });

  it("shows names as text, never as HTML", async () => {
    hostile = connect(monitor.port, { name: HOSTILE_NAME, version: "<b>1</b>" });
    await hostile.ready;
    await page.waitForSelector(row(hostile.origin), { timeout: 10_000 });
    assert.equal(await cell(hostile.origin, 1), HOSTILE_NAME);
    assert.equal(await page.$("#pwned"), null, "the name became an element");
    assert.notEqual(await page.title(), "pwned");
    const events = await page.$eval("#events", (ol) => ol.textContent ?? "");
    assert.ok(events.includes(HOSTILE_NAME), "its join is listed as text");
  });

  it("shows an application leaving within a second of its kill -9", async () => {
    const { proc, origin } = apps.get("dash-b")!;
    await page.waitForSelector(row(origin));
    const killed = Date.now();
    proc.proc.kill("SIGKILL");
    await page.waitForFunction(
      (sel, o) =>
        document.querySelector(sel) === null &&
        document.querySelector(`#events li[data-kind="leave"][data-origin="${o}"]`) !== null,
      { timeout: 10_000, polling: 20 },
      row(origin),
      origin,
    );
    const took = Date.now() - killed;
    console.log(`dashboard: dash-b's leave shown ${took} ms after its kill -9`);
    assert.ok(took < 1000, `the leave took ${took} ms to show`);
    // It stays listed, greyed, with the reason in plain language.
    const gone = await page.$eval(
      `#departed tr.gone[data-origin="${origin}"]`,
      (tr) => tr.textContent ?? "",
    );
    assert.match(gone, /dash-b/);
    assert.match(gone, /connection lost without a goodbye/);
    apps.delete("dash-b");
    await eventually(
      async () => (await page.$$("#apps tbody tr")).length === 3,
      5000,
      "dash-a, the tester and the hostile client listed",
    );
  });
});
