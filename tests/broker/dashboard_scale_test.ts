// The dashboard as an operator sees it at 2, 20 and 300 applications, in a headless Chromium:
// one monitor on an in-memory Kafka, two real applications (a route and a load generator that
// measures its own rate and latency), and up to 298 more sessions that report as applications
// do (15 names, 17 routes of their own each and one per name: 5,082 routes). It checks what the page says against the load
// generator's own figures, the health shown first (Kafka made unreachable shows within 5 s),
// bounded pushes per page, and saves a screenshot at each size (DASHBOARD_SHOTS=<dir> keeps
// them; docs/observability.md shows them).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Browser, Page } from "puppeteer-core";
import { MemoryKafka } from "../../kafka/mod.ts";
import type { PresenceMonitor } from "../../presence/mod.ts";
import { statsMessage } from "../../protocol/presence.ts";
import { MESH_PROTOCOL } from "../../protocol/credentials.ts";
import { startApp, startMonitor } from "../_mesh_memory.ts";
import type { App } from "../_mesh_memory.ts";
import { connect } from "../_presence.ts";
import type { Client } from "../_presence.ts";
import { launchBrowser, noBrowser } from "../_browser.ts";
import type { PageDocument } from "../_browser.ts";
import { sleep } from "../_helpers.ts";

declare const document: PageDocument; // in the functions that run in the page

const skip = noBrowser();
const NAMES = [
  "orders",
  "billing",
  "catalog",
  "search",
  "payments",
  "shipping",
  "users",
  "auth",
  "inventory",
  "pricing",
  "reviews",
  "cart",
  "notify",
  "reports",
  "gateway",
];
const ROUTES_EACH = 18;

interface Fake {
  name: string;
  client: Client;
  timer: ReturnType<typeof setInterval>;
}

describe("the dashboard at 2, 20 and 300 applications", { skip }, () => {
  const kafka = new MemoryKafka();
  let monitor: PresenceMonitor;
  let orders: App, loadgen: App;
  const fakes: Fake[] = [];
  let browser: Browser;
  let page: Page;
  const keep = process.env.DASHBOARD_SHOTS;
  const shots = keep ?? mkdtempSync(join(tmpdir(), "minimesh-dashboard-scale-"));
  const started = new Date().toISOString();

  // A session that reports as an application: its routes and a steady rate.
  async function fake(i: number): Promise<void> {
    const name = NAMES[i % NAMES.length];
    const client = connect(monitor.port, { name, version: "2.1.0", protocols: [MESH_PROTOCOL] });
    await client.ready;
    const routes = [`${name}.common`];
    for (let k = 0; k < ROUTES_EACH - 1; k++) routes.push(`${name}.i${i}.op${k}`);
    let events = 0;
    const report = () => {
      events += 50 + (i % 7) * 10;
      client.sendEnvelope(statsMessage({ events, errors: 0, started, routes: routes.sort() }));
    };
    report();
    fakes.push({ name, client, timer: setInterval(report, 5000) });
  }

  async function grow(to: number): Promise<void> {
    const have = () => 2 + fakes.length;
    while (have() < to) {
      const batch = Math.min(25, to - have());
      await Promise.all(Array.from({ length: batch }, (_, k) => fake(have() + k)));
    }
  }

  const text = (sel: string) => page.$eval(sel, (e) => e.textContent ?? "");

  before(async () => {
    monitor = await startMonitor(kafka, [
      "-Dmax.virtual.topics=576",
      "-Dpresence.max.connections.per.address=1000",
      "-Dpresence.max.pending.per.address=1000",
      "-Dserver.max.connections.per.address=1000",
    ]);
    orders = startApp(kafka, [monitor], "orders");
    orders.platform.register("orders.get", async (_h, body) => {
      await sleep(1 + Math.random() * 9); // a spread the percentiles must find
      return body;
    }, 16);
    loadgen = startApp(kafka, [monitor], "loadgen");
    await Promise.all([orders.connector.joined, loadgen.connector.joined]);
    if (keep) mkdirSync(keep, { recursive: true });
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
  });

  after(async () => {
    for (const f of fakes) clearInterval(f.timer);
    await Promise.all(fakes.map((f) => f.client.close()));
    await browser?.close();
    await loadgen?.connector.stop();
    await orders?.connector.stop();
    await monitor?.stop();
    if (!keep) rmSync(shots, { recursive: true, force: true });
  });

  it("2 applications: routes with the callers' rate and latency, as the caller measured them", async () => {
    await page.goto(`http://127.0.0.1:${monitor.port}/`, { waitUntil: "load" });
    // Load: 8 requests in flight for 20 s; the caller keeps its own figures.
    const latencies: number[] = [];
    let running = true;
    const t0 = performance.now();
    const workers = Array.from({ length: 8 }, async () => {
      while (running) {
        const s = performance.now();
        await loadgen.po.request({ to: "orders.get", body: 1 }, 5000);
        latencies.push(performance.now() - s);
      }
    });
    const row = `#routes tr[data-route="orders.get"]`;
    try {
      // Two reports of the caller (every 5 s) carry its figures; read them at 16 s.
      await sleep(16_000);
      await page.waitForSelector(row, { timeout: 10_000 });
      const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent ?? ""));
      const elapsed = (performance.now() - t0) / 1000;
      const sorted = [...latencies].sort((a, b) => a - b);
      const q = (p: number) => sorted[Math.ceil(p * sorted.length) - 1];
      const own = { rate: latencies.length / elapsed, p50: q(0.5), p99: q(0.99) };
      const shown = { rate: Number(cells[3]), p50: Number(cells[5]), p99: Number(cells[6]) };
      console.log(
        `dashboard: orders.get shown ${JSON.stringify(shown)}; the caller measured ` +
          `${own.rate.toFixed(1)}/s, p50 ${own.p50.toFixed(2)} ms, p99 ${own.p99.toFixed(2)} ms`,
      );
      assert.match(cells[1], /orders x1/, "its provider");
      assert.equal(cells[2], "1", "one instance serves it");
      for (const k of ["rate", "p50", "p99"] as const) {
        const off = Math.abs(shown[k] - own[k]) / own[k];
        assert.ok(
          off <= 0.1,
          `${k}: shown ${shown[k]}, measured ${own[k]} (${(off * 100).toFixed(1)} % off)`,
        );
      }
      assert.match(await text("#h-kafka"), /Kafka reachable/);
      await page.screenshot({
        path: join(shots, "dashboard-2.png") as `${string}.png`,
        fullPage: true,
      });
    } finally {
      running = false;
      await Promise.all(workers);
    }
  });

  it("20 applications: grouped by name, each instance listed with its health", async () => {
    await grow(20);
    await page.waitForFunction(
      () => document.querySelector("#n-apps")?.textContent === "20",
      { timeout: 15_000 },
    );
    assert.equal((await page.$$("#apps tbody tr")).length, 20, "every instance listed");
    assert.equal((await page.$$("#groups tbody tr")).length, 15 + 1, "15 names and loadgen");
    await page.waitForFunction(
      () => (document.querySelector("#apps tbody")?.textContent ?? "").includes("UP"),
      { timeout: 15_000 },
    );
    await page.screenshot({
      path: join(shots, "dashboard-20.png") as `${string}.png`,
      fullPage: true,
    });
  });

  it("300 applications and 5,082 routes: bounded pages, a filter, one group's instances", async () => {
    await grow(300);
    await page.waitForFunction(
      () => document.querySelector("#n-apps")?.textContent === "300",
      { timeout: 60_000 },
    );
    // Instances beyond 100 are listed per application on demand; routes, the busiest 100.
    assert.equal((await page.$$("#apps tbody tr")).length, 0);
    assert.equal((await page.$$("#routes tbody tr")).length, 100);
    await page.waitForFunction(
      () => {
        const total = /of (\d+)/.exec(document.querySelector("#routes-count")?.textContent ?? "");
        return total !== null && Number(total[1]) >= 5000;
      },
      { timeout: 15_000 },
    );
    const health = await page.$eval(
      "#health",
      (e) =>
        (e as unknown as { getBoundingClientRect(): { top: number } }).getBoundingClientRect().top,
    );
    assert.ok(health < 200, "the mesh's health comes first");
    await page.screenshot({
      path: join(shots, "dashboard-300.png") as `${string}.png`,
      fullPage: true,
    });

    await page.click(`#groups tr[data-name="billing"]`);
    const billing = fakes.filter((f) => f.name === "billing").length;
    await page.waitForFunction(
      (n) => document.querySelectorAll("#apps tbody tr").length === n,
      { timeout: 10_000 },
      billing,
    );
    await page.type("#route-filter", "catalog.i2");
    await page.waitForFunction(
      () => {
        const rows = document.querySelectorAll("#routes tbody tr");
        return rows.length > 0 &&
          Array.from(rows).every((r) => (r.textContent ?? "").includes("catalog.i2"));
      },
      { timeout: 10_000 },
    );

    // What one page costs: the pushes of 6 s, read as the page reads them.
    const res = await fetch(`http://127.0.0.1:${monitor.port}/dashboard/events`);
    const reader = res.body!.getReader();
    let bytes = 0;
    const end = Date.now() + 6000;
    while (Date.now() < end) {
      const { value, done } = await Promise.race([
        reader.read(),
        sleep(end - Date.now()).then(() => ({ value: undefined, done: false })),
      ]);
      if (done) break;
      bytes += value?.byteLength ?? 0;
    }
    await reader.cancel();
    const perSecond = bytes / 6;
    console.log(
      `dashboard: one page at 300 applications receives ${Math.round(perSecond / 1024)} KiB/s`,
    );
    assert.ok(perSecond < 256 * 1024, `${perSecond} bytes/s for one page`);
  });

  it("shows Kafka unreachable within 5 s, and reachable again", async () => {
    const cut = Date.now();
    kafka.available = false;
    try {
      await page.waitForFunction(
        () => /UNREACHABLE/.test(document.querySelector("#h-kafka")?.textContent ?? ""),
        { timeout: 5000, polling: 50 },
      );
      console.log(`dashboard: Kafka shown unreachable ${Date.now() - cut} ms after the cut`);
      assert.match(await text("#problems"), /Kafka .* is unreachable from this monitor/);
      await page.screenshot({
        path: join(shots, "dashboard-kafka-down.png") as `${string}.png`,
        fullPage: true,
      });
    } finally {
      kafka.available = true;
    }
    await page.waitForFunction(
      () => /Kafka reachable/.test(document.querySelector("#h-kafka")?.textContent ?? ""),
      { timeout: 5000 },
    );
  });
});
