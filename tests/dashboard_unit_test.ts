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
import {
  dashboardState,
  MAX_APP_ROWS,
  MAX_GROUPS,
  MAX_ROUTE_ROWS,
  plainReason,
} from "../presence/dashboard_state.ts";
import { fineBucket } from "../bus/caller_stats.ts";
import type { CallReport } from "../bus/caller_stats.ts";
import type { DashboardState } from "../presence/dashboard_state.ts";
import { MAX_ROUTES, RouteStats, SLOT_MS, SLOTS } from "../presence/route_stats.ts";
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
  return dashboardState(
    {
      monitor: { origin: ORIGIN, name: "m", version: "1" },
      monitors: new Map(),
      aliveMs: 5000,
      connections: [],
      stats: new AppStats(),
      calls: new RouteStats(),
      kafka: { up: true, since: STARTED, brokers: "127.0.0.1:9092" },
      departed: [],
      events: [{
        at: "",
        kind: "join",
        origin: ORIGIN,
        name: "x".repeat(size),
        version: "",
        detail: "",
      }],
      addressOf: () => undefined,
    },
    {},
    0,
  );
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
    const now = state();
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

describe("the route view's figures (RouteStats)", () => {
  const T0 = 1_000_000_000_000;
  const call = (route: string, calls: number, ms: number[]): CallReport => {
    const latency = new Map<number, number>();
    for (const m of ms) latency.set(fineBucket(m), (latency.get(fineBucket(m)) ?? 0) + 1);
    return { route, calls, errors: 1, timeouts: 0, latency: [...latency] };
  };

  it("adds the callers' rates, drops a caller gone silent, and keeps five minutes of history", () => {
    const r = new RouteStats();
    r.add("a", [call("x.y", 100, [2, 2, 4])], 5000, T0);
    r.add("b", [call("x.y", 50, [8])], 5000, T0 + 1000);
    const f = r.figures("x.y", T0 + 2000)!;
    assert.equal(f.rate, 30, "20/s + 10/s");
    assert.equal(f.errorRate, 0.4);
    assert.equal(f.history.length, SLOTS);
    assert.ok(Math.abs(f.p50! - 2) / 2 < 0.05, `p50 ${f.p50}`);
    assert.ok(Math.abs(f.p99! - 8) / 8 < 0.05, `p99 ${f.p99}`);
    // Caller b stops reporting: after 12.5 s it no longer counts.
    r.add("a", [call("x.y", 100, [2])], 5000, T0 + 14_000);
    assert.equal(r.figures("x.y", T0 + 14_000)!.rate, 20);
    assert.equal(r.figures("x.y", T0 + SLOT_MS * SLOTS + 15_000), undefined, "five minutes on");
  });

  it("keeps at most MAX_ROUTES routes, the least recently called going first", () => {
    const r = new RouteStats();
    for (let i = 0; i < MAX_ROUTES + 10; i++) r.add("a", [call(`r.${i}`, 1, [1])], 5000, T0);
    assert.equal(r.size, MAX_ROUTES);
    assert.equal(r.figures("r.0", T0), undefined);
    assert.ok(r.figures(`r.${MAX_ROUTES + 9}`, T0) !== undefined);
  });

  it("reads a report's calls strictly: anything else is a TypeError, never a crash", () => {
    const ok = {
      events: 1,
      errors: 0,
      started: STARTED,
      calls: { ms: 5000, routes: [call("x.y", 3, [1, 2])] },
      kafka: true,
      http: 8080,
    };
    assert.deepEqual(parseReport(ok).calls, ok.calls);
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (calls, kafka, http) => {
        try {
          parseReport({ ...ok, calls, kafka, http });
        } catch (e) {
          assert.ok(e instanceof TypeError, String(e));
        }
      }),
      { numRuns: 500 },
    );
    const tooMany = Array.from({ length: 51 }, (_, i) => call(`r.${i}`, 1, [1]));
    assert.throws(
      () => parseReport({ ...ok, calls: { ms: 5000, routes: tooMany } }),
      /at most 50/,
    );
    assert.throws(
      () =>
        parseReport({
          ...ok,
          calls: { ms: 5000, routes: [{ ...call("x", 1, []), latency: [[9999, 1]] }] },
        }),
      /latency buckets/,
    );
  });

  it("a monitor shares what its sessions called between two shares as one report", () => {
    const stats = new AppStats();
    stats.own(ORIGIN, {
      events: 1,
      errors: 0,
      started: STARTED,
      calls: { ms: 5000, routes: [call("x.y", 2, [1])] },
    });
    stats.own(ORIGIN, {
      events: 2,
      errors: 0,
      started: STARTED,
      calls: { ms: 4000, routes: [call("x.y", 3, [1]), call("z.w", 1, [5])] },
    });
    const [shared] = stats.takeShare([ORIGIN], new Set([ORIGIN]));
    assert.equal(shared.report.calls!.ms, 9000);
    const byRoute = new Map(shared.report.calls!.routes.map((r) => [r.route, r]));
    assert.equal(byRoute.get("x.y")!.calls, 5);
    assert.deepEqual(byRoute.get("x.y")!.latency, [[fineBucket(1), 2]]);
    assert.equal(byRoute.get("z.w")!.calls, 1);
    assert.equal(stats.takeShare([ORIGIN], new Set([ORIGIN])).length, 0, "shared once");
  });
});

describe("the dashboard's state", () => {
  const inputs = (n: number, names: string[]): Parameters<typeof dashboardState>[0] => {
    const stats = new AppStats();
    const connections = Array.from({ length: n }, (_, i) => {
      const origin = `2026120500000000000000000000000000${String(i).padStart(6, "0")}`;
      const name = names[i % names.length];
      stats.update(origin, {
        events: 10,
        errors: 0,
        started: STARTED,
        routes: [`${name}.common`, `${name}.i${i}`],
        kafka: i % 50 !== 7,
        http: 8000 + i,
      });
      return {
        origin,
        name,
        version: "1",
        type: "APP",
        group: 1,
        monitor: ORIGIN,
        session: String(i),
        created: STARTED,
        updated: STARTED,
        seq: 1,
        topic: `t-${i}`,
      };
    });
    return {
      monitor: { origin: ORIGIN, name: "m", version: "1" },
      monitors: new Map([[ORIGIN, { lastSeen: Date.now(), version: "1", started: STARTED }]]),
      aliveMs: 5000,
      connections,
      stats,
      calls: new RouteStats(),
      kafka: { up: true, since: STARTED, brokers: "k:9092" },
      departed: [],
      events: [],
      addressOf: (o) => o.endsWith("1") ? "::ffff:10.0.0.1" : undefined,
    };
  };

  it("stays bounded for any number of applications and names (generated)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }),
        fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 400 }),
        fc.option(fc.string({ maxLength: 120 }), { nil: undefined }),
        (n, names, filter) => {
          const s = dashboardState(inputs(n, names), { routes: filter, app: names[0] });
          assert.equal(s.appsTotal, n);
          assert.ok(s.apps.length <= MAX_APP_ROWS);
          if (n <= MAX_APP_ROWS) assert.equal(s.apps.length, n);
          else assert.ok(s.apps.every((a) => a.name === names[0]));
          assert.ok(s.routes.length <= MAX_ROUTE_ROWS && s.routesTotal >= s.routes.length);
          assert.ok(s.groups.length <= MAX_GROUPS);
          const distinct = new Set(Array.from({ length: n }, (_, i) => names[i % names.length]));
          if (distinct.size <= MAX_GROUPS) {
            assert.equal(s.groups.reduce((k, g) => k + g.instances, 0), n);
          }
          const down = Array.from({ length: n }, (_, i) => i).filter((i) => i % 50 === 7).length;
          assert.equal(s.health.appsDown, down);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("puts what is wrong first, in plain language, and links an instance's endpoints", () => {
    const i = inputs(3, ["a"]);
    i.kafka = { up: false, since: STARTED, brokers: "k:9092" };
    const s = dashboardState(i);
    assert.match(s.health.problems[0], /Kafka \(k:9092\) is unreachable/);
    assert.match(s.health.problems.join("\n"), /Only one monitor/);
    const linked = s.apps.find((a) => a.origin.endsWith("1"))!;
    assert.equal(linked.http, "http://[::ffff:10.0.0.1]:8001");
    assert.equal(s.apps.find((a) => a.origin.endsWith("0"))!.http, null, "address unknown");
    // A Platform given as the monitor shows its name, version and origin only.
    const leaky = { ...i.monitor, config: { secret: "s3cret" } };
    assert.deepEqual(Object.keys(dashboardState({ ...i, monitor: leaky }).monitor).sort(), [
      "name",
      "origin",
      "version",
    ]);
    assert.match(plainReason("websocket closed (1006)"), /killed or crashed/);
    assert.match(plainReason("monitor 2026abc is gone"), /its monitor stopped answering/);
    assert.equal(plainReason("something new"), "something new");
  });
});
