import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CallerStats,
  FINE_BUCKETS,
  fineBucket,
  fineQuantile,
  MAX_CALLED_ROUTES,
  OTHER_ROUTES,
} from "./caller_stats.ts";
import { Platform } from "./platform.ts";
import { PostOffice } from "./post_office.ts";

describe("CallerStats", () => {
  it("a quantile of the fine buckets is within 4.5 % of the exact one (generated latencies)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 60_000, noNaN: true }), { minLength: 1 }),
        fc.constantFrom(0.5, 0.9, 0.99),
        (ms, q) => {
          const buckets = new Map<number, number>();
          for (const v of ms) buckets.set(fineBucket(v), (buckets.get(fineBucket(v)) ?? 0) + 1);
          const sorted = [...ms].sort((a, b) => a - b);
          const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
          const estimate = fineQuantile(buckets, q)!;
          assert.ok(
            Math.abs(estimate - exact) / exact <= 0.045,
            `q${q}: ${estimate} for ${exact}`,
          );
        },
      ),
      { numRuns: 300 },
    );
    assert.equal(fineBucket(1e9), FINE_BUCKETS - 1, "beyond 67 s: the last bucket");
    assert.equal(fineQuantile([], 0.5), undefined);
  });

  it("reports what changed since the last report, and keeps at most 1000 routes apart", () => {
    const stats = new CallerStats();
    stats.record("a.b", 200, 2);
    stats.record("a.b", 503, 4);
    stats.record("a.b", 408, 100);
    const [first] = stats.takeReport();
    assert.deepEqual(
      [first.route, first.calls, first.errors, first.timeouts],
      ["a.b", 3, 2, 1],
    );
    assert.equal(first.latency.reduce((n, [, c]) => n + c, 0), 3);
    assert.deepEqual(stats.takeReport(), [], "nothing new");
    for (let i = 0; i < MAX_CALLED_ROUTES + 50; i++) stats.record(`r.${i}`, 200, 1);
    const routes = new Set(stats.takeReport().map((r) => r.route));
    assert.equal(routes.size, MAX_CALLED_ROUTES);
    assert.ok(routes.has(OTHER_ROUTES));
    const requests = stats.metrics()[0];
    assert.equal(
      requests.samples.filter((s) => s.labels?.route === OTHER_ROUTES)[0].value,
      51,
      "the routes beyond the limit, counted together",
    );
    // Whatever status a peer's reply carries, the labels stay within 100-599.
    for (const odd of [12345, -1, 99, 600, 1.5, NaN]) stats.record("a.b", odd, 1);
    const statuses = stats.metrics()[0].samples.filter((s) => s.labels?.route === "a.b")
      .map((s) => s.labels?.status);
    assert.deepEqual([...new Set(statuses)].sort(), ["200", "408", "500", "503"]);
  });

  it("counts a platform's requests by route (without @origin) and status, fork-and-join too", async () => {
    const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
    platform.register("s.ok", (_h, b) => b);
    platform.register("s.slow", () => new Promise((r) => setTimeout(r, 200)));
    const traced = new PostOffice({ my_trace_id: "0af7651916cd43dd8448eb211c80319c" }, platform);
    await traced.request({ to: "s.ok" }, 1000);
    await traced.request({ to: `s.ok@${platform.origin}` }, 1000);
    await new PostOffice({}, platform).request(
      [{ to: "s.ok" }, { to: "s.slow" }],
      { timeout: 50, timeoutException: false },
    );
    const requests = platform.metrics().find((f) => f.name === "minimesh_client_requests_total")!;
    const count = (route: string, status: string) =>
      requests.samples.find((s) => s.labels?.route === route && s.labels.status === status)
        ?.value;
    assert.equal(count("s.ok", "200"), 3);
    assert.equal(count("s.slow", "408"), 1);
    await platform.stop();
  });
});
