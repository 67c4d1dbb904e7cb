// The dashboard's parts without a broker: application reports and rates, the monitors' `stats`
// message, the event feed (debounced pushes, its viewer limit, slow pages dropped) and
// server-sent events through the runtime's server. The page itself: tests/broker/dashboard_test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope } from "../mod.ts";
import fc from "fast-check";
import {
  AppStats,
  MAX_ROUTE_CHARS,
  parseReport,
  ROUTES_INTERVAL_MS,
} from "../presence/app_stats.ts";
import {
  DashboardFeed,
  FIGURES_DELAY_MS,
  MAX_VIEWERS,
  MAX_VIEWERS_PER_CLIENT,
} from "../presence/dashboard.ts";
import type { DashboardState } from "../presence/dashboard.ts";
import { controlEnvelope, parseControl } from "../presence/control.ts";
import type { MonitorMessage } from "../presence/control.ts";
import { MAX_REPORTED_ROUTES } from "../protocol/report.ts";
import { serve } from "#runtime";
import { sleep, testPlatform } from "./_helpers.ts";
import { monitorHandler } from "../presence/http.ts";

const STARTED = "2026-11-27T10:00:00.000Z";
const ORIGIN = "20261127aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

describe("application reports", () => {
  it("are read strictly, naming the field at fault", () => {
    assert.deepEqual(parseReport({ events: 3, errors: 1, started: STARTED, routes: ["b", "a"] }), {
      events: 3,
      errors: 1,
      started: STARTED,
      routes: ["a", "b"],
    });
    const bad: [unknown, RegExp][] = [
      [null, /stats must be a map/],
      [[1], /stats must be a map/],
      [{ events: -1, errors: 0, started: STARTED }, /stats.events must be a non-negative/],
      [{ events: "3", errors: 0, started: STARTED }, /stats.events/],
      [{ events: 1.5, errors: 0, started: STARTED }, /stats.events/],
      [{ events: 0, errors: 2 ** 60, started: STARTED }, /stats.errors/],
      [{ events: 0, errors: 0, started: "yesterday" }, /stats.started must be a date/],
      [{ events: 0, errors: 0, started: STARTED, routes: "a" }, /stats.routes must be a list/],
      [{ events: 0, errors: 0, started: STARTED, routes: [1] }, /stats.routes must be a list/],
    ];
    for (const [body, error] of bad) assert.throws(() => parseReport(body), error);
  });

  it("keep at most 500 routes of at most 200 characters each", () => {
    const routes = Array.from({ length: 2000 }, (_, i) => `r${String(i).padStart(4, "0")}`);
    routes.push("x".repeat(10_000));
    const r = parseReport({ events: 0, errors: 0, started: STARTED, routes });
    assert.equal(r.routes!.length, MAX_REPORTED_ROUTES);
    assert.ok(r.routes!.every((x) => x.length <= 200));
  });

  it("hold at most 16 K characters of route names, whatever a session sends", () => {
    const name = fc.string({ minLength: 1, maxLength: 400 });
    fc.assert(
      fc.property(fc.array(name, { maxLength: 800 }), (routes) => {
        const r = parseReport({ events: 0, errors: 0, started: STARTED, routes });
        const chars = r.routes!.reduce((n, x) => n + x.length, 0);
        assert.ok(chars <= MAX_ROUTE_CHARS, `${chars} characters`);
        assert.ok(
          r.routes!.length <= MAX_REPORTED_ROUTES && r.routes!.every((x) => x.length <= 200),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("take new routes at most once in ROUTES_INTERVAL_MS: a session renaming its routes every second changes nothing", () => {
    const stats = new AppStats();
    const report = (i: number) => ({ events: i, errors: 0, started: STARTED, routes: [`r.${i}`] });
    assert.equal(stats.update(ORIGIN, report(0), 0), true);
    let changes = 0;
    for (let t = 1000; t < 3 * ROUTES_INTERVAL_MS; t += 1000) {
      if (stats.update(ORIGIN, report(t), t)) changes++;
    }
    assert.equal(changes, 2, "one change per interval");
    assert.deepEqual(
      stats.get(ORIGIN)!.events,
      3 * ROUTES_INTERVAL_MS - 1000,
      "figures still taken",
    );
  });

  it("give rates per second between two reports, none across a restart", () => {
    const stats = new AppStats();
    assert.equal(
      stats.update(ORIGIN, { events: 0, errors: 0, started: STARTED, routes: ["a"] }, 0),
      true,
    );
    assert.equal(stats.update(ORIGIN, { events: 50, errors: 5, started: STARTED }, 5000), false);
    const f = stats.get(ORIGIN)!;
    assert.deepEqual([f.rate, f.errorRate, f.routes], [10, 1, ["a"]], "routes kept when absent");
    const restarted = "2026-11-27T11:00:00.000Z";
    stats.update(ORIGIN, { events: 2, errors: 0, started: restarted }, 10_000);
    assert.deepEqual([stats.get(ORIGIN)!.rate, stats.get(ORIGIN)!.events], [0, 2]);
    assert.equal(
      stats.update(ORIGIN, { events: 2, errors: 0, started: restarted, routes: ["b"] }),
      true,
    );
    stats.retain(new Set());
    assert.equal(stats.get(ORIGIN), undefined, "gone with its connection");
  });

  it("are shared: what reported since the last share, routes only when changed or asked for", () => {
    const stats = new AppStats();
    const other = ORIGIN.replace("a", "b");
    const present = new Set([ORIGIN, other]);
    stats.own(ORIGIN, { events: 1, errors: 0, started: STARTED, routes: ["a.b"] }, 0);
    assert.deepEqual(stats.takeShare([ORIGIN], present), [
      { origin: ORIGIN, report: { events: 1, errors: 0, started: STARTED, routes: ["a.b"] } },
    ]);
    assert.deepEqual(stats.takeShare([ORIGIN], present), [], "nothing new reported");
    stats.own(ORIGIN, { events: 5, errors: 1, started: STARTED }, 5000);
    assert.deepEqual(stats.takeShare([ORIGIN], present), [
      { origin: ORIGIN, report: { events: 5, errors: 1, started: STARTED } },
    ]);
    stats.shareAllRoutes(); // a monitor started
    assert.deepEqual(stats.takeShare([ORIGIN], present), [
      { origin: ORIGIN, report: { events: 5, errors: 1, started: STARTED, routes: ["a.b"] } },
    ]);
    stats.own(ORIGIN, { events: 6, errors: 1, started: STARTED }, 10_000);
    assert.deepEqual(stats.takeShare([ORIGIN], new Set([other])), [], "gone from the table");
    assert.equal(stats.get(ORIGIN), undefined);
  });

  it("travel between monitors as a `stats` message", () => {
    const msg: MonitorMessage = {
      type: "stats",
      monitor: ORIGIN,
      apps: [
        { origin: ORIGIN, report: { events: 7, errors: 1, started: STARTED, routes: ["a.b"] } },
        { origin: ORIGIN.replace("a", "b"), report: { events: 0, errors: 0, started: STARTED } },
      ],
    };
    const back = parseControl(EventEnvelope.fromBytes(controlEnvelope(msg).toBytes()));
    assert.deepEqual(back, msg);
    const bad = new EventEnvelope({ headers: { type: "stats", monitor: ORIGIN }, body: {} });
    assert.throws(() => parseControl(bad), /stats body must have an apps list/);
  });
});

function state(size = 10): DashboardState {
  return {
    now: new Date(0).toISOString(),
    monitor: { origin: ORIGIN, name: "m", version: "1" },
    monitors: [],
    apps: [],
    events: [{
      at: "",
      kind: "join",
      origin: ORIGIN,
      name: "x".repeat(size),
      version: "",
      detail: "",
    }],
  };
}

// Reads server-sent events from a stream: the `data:` of each, parsed.
async function* events(body: ReadableStream<Uint8Array>): AsyncGenerator<DashboardState> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of body) {
    text += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const data = text.slice(0, end).split("\n").find((l) => l.startsWith("data: "));
      text = text.slice(end + 2);
      if (data) yield JSON.parse(data.slice(6));
    }
  }
}

describe("the dashboard feed", () => {
  it("sends the state at once, then one push per burst of changes", async () => {
    let built = 0;
    const feed = new DashboardFeed(() => (built++, state()));
    const res = feed.stream();
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reader = events(res.body!);
    assert.equal((await reader.next()).value?.monitor.origin, ORIGIN);
    for (let i = 0; i < 10; i++) feed.changed();
    await reader.next();
    assert.equal(built, 2, "ten changes within 100 ms made one push");
    feed.record({ at: "", kind: "leave", origin: ORIGIN, name: "n", version: "v", detail: "d" });
    assert.equal(feed.events.length, 1);
    feed.close();
    assert.equal(feed.viewers, 0);
  });

  it("pushes figures at most once a second, and a join or leave at once even then", async () => {
    let built = 0;
    const feed = new DashboardFeed(() => (built++, state()));
    const reader = events(feed.stream().body!);
    await reader.next();
    feed.changed(FIGURES_DELAY_MS);
    await sleep(200);
    assert.equal(built, 1, "a report's figures wait");
    feed.changed(); // a leave
    const started = Date.now();
    await reader.next();
    assert.ok(Date.now() - started < 500, "the leave did not wait for the figures");
    assert.equal(built, 2);
    feed.close();
  });

  it(`refuses a viewer beyond ${MAX_VIEWERS} with 503 and keeps 100 joins and leaves`, async () => {
    const feed = new DashboardFeed(() => state());
    const open = Array.from({ length: MAX_VIEWERS }, () => feed.stream());
    assert.ok(open.every((r) => r.status === 200));
    const refused = feed.stream();
    assert.equal(refused.status, 503);
    assert.match((await refused.json()).message, /Too many dashboards open \(32\)/);
    await open[0].body!.cancel();
    assert.equal(feed.viewers, MAX_VIEWERS - 1, "a cancelled stream frees its place");
    for (let i = 0; i < 150; i++) {
      feed.record({ at: "", kind: "join", origin: String(i), name: "", version: "", detail: "" });
    }
    assert.deepEqual([feed.events.length, feed.events[0].origin], [100, "50"]);
    feed.close();
  });

  it(`one client opens at most ${MAX_VIEWERS_PER_CLIENT}: a hog leaves room for the operator`, () => {
    const feed = new DashboardFeed(() => state());
    // A client at one address asks for every place; only its share is given (429 beyond).
    const hog = Array.from({ length: MAX_VIEWERS }, () => feed.stream("127.0.0.9"));
    assert.equal(hog.filter((r) => r.status === 200).length, MAX_VIEWERS_PER_CLIENT);
    assert.equal(hog.filter((r) => r.status === 429).length, MAX_VIEWERS - MAX_VIEWERS_PER_CLIENT);
    const operator = feed.stream("127.0.0.1");
    assert.equal(operator.status, 200);
    feed.close();
  });

  it("drops a page that stopped reading instead of buffering for it", async () => {
    const feed = new DashboardFeed(() => state(1024 * 1024)); // 1 MB a state
    const res = feed.stream(); // never read
    for (let i = 0; i < 8 && feed.viewers > 0; i++) {
      feed.changed();
      await sleep(150);
    }
    assert.equal(feed.viewers, 0, "the slow page was dropped");
    await assert.rejects(res.body!.getReader().read(), /too slow/);
  });
});

describe("server-sent events through the runtime's server", () => {
  it("stream as they come, and a client that leaves cancels the stream", async () => {
    let cancelled = false;
    let push!: (s: string) => void;
    const server = await serve({
      port: 0,
      hostname: "127.0.0.1",
      wsPrefix: "/ws/",
      handlers: { open() {}, message() {}, close() {} },
      fetch: () => {
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            push = (s) => c.enqueue(encoder.encode(s));
            push(`data: ${JSON.stringify(state())}\n\n`);
          },
          cancel() {
            cancelled = true;
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
    });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/`);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const reader = events(res.body!);
      assert.equal((await reader.next()).value?.monitor.name, "m", "the first event, unended");
      push(`data: ${JSON.stringify({ ...state(), now: "later" })}\n\n`);
      assert.equal((await reader.next()).value?.now, "later");
      await reader.return(undefined);
      for (let i = 0; i < 100 && !cancelled; i++) await sleep(20);
      assert.ok(cancelled, "the client's leaving cancelled the stream");
    } finally {
      await server.close();
    }
  });
});

describe("the monitor's dashboard endpoints", () => {
  it("/dashboard/state answers the state as JSON, behind the same rule as the page", async () => {
    const platform = testPlatform({
      args: ["-Dprotect.info.endpoints=true", "-Dapi.tokens=t0ken"],
    });
    const now: DashboardState = {
      now: STARTED,
      monitor: { origin: ORIGIN, name: "m", version: "1" },
      monitors: [],
      apps: [],
      events: [],
    };
    const handler = monitorHandler({
      platform,
      brokers: ["127.0.0.1:9092"],
      settings: { kafka: { topics: "t" } },
      ready: true,
      loopback: () => Promise.resolve("ok"),
      info: () => Promise.resolve({}),
      dashboardStream: () => new Response("stream"),
      dashboardState: () => now,
    });
    const get = (auth?: string, method = "GET") =>
      handler(
        new Request("http://x/dashboard/state", {
          method,
          headers: auth === undefined ? {} : { authorization: auth },
        }),
      );
    assert.equal((await get()).status, 401);
    assert.equal((await get("Bearer wrong")).status, 401);
    const ok = await get("Bearer t0ken");
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), now);
    assert.equal((await get("Bearer t0ken", "POST")).status, 405);
  });
});
