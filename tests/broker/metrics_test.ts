// /metrics in the Prometheus text format, read back by a real parser of that format (the
// Prometheus project's own, expfmt, built with Go: so in the full suite, not test:unit): route
// counters and histograms move with traffic.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostOffice, VERSION } from "../../mod.ts";
import { actuatorHandler, startHttp } from "../../actuator/mod.ts";
import { prometheusText } from "../../internal.ts";
import { testPlatform } from "../_helpers.ts";
import { parsePrometheus, valueOf } from "../_prometheus.ts";
import type { ParsedFamily } from "../_prometheus.ts";

async function scrape(
  get: (path: string) => Promise<Response | undefined>,
): Promise<ParsedFamily[]> {
  const res = (await get("/metrics"))!;
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

describe("/metrics", () => {
  it("is Prometheus text that a real parser reads, and its counters move with traffic", async () => {
    const platform = testPlatform();
    platform.register("m.ok", (_h, b) => b, 2);
    platform.register("m.fail", () => {
      throw new Error("no");
    });
    const handle = actuatorHandler(platform);
    const get = (path: string) => handle(new Request(`http://x${path}`));
    const before = await scrape(get);
    assert.equal(valueOf(before, "minimesh_route_events_total", { route: "m.ok" }), 0);

    // Traced requests are timed: they land in the latency histogram.
    const po = new PostOffice({ my_trace_id: "0af7651916cd43dd8448eb211c80319c" }, platform);
    for (let i = 0; i < 5; i++) await po.request({ to: "m.ok", body: i }, 1000);
    for (let i = 0; i < 2; i++) {
      await po.request({ to: "m.fail" }, { timeout: 1000, timeoutException: false });
    }
    const after = await scrape(get);
    assert.equal(valueOf(after, "minimesh_route_events_total", { route: "m.ok" }), 5);
    assert.equal(valueOf(after, "minimesh_route_errors_total", { route: "m.fail" }), 2);
    assert.equal(valueOf(after, "minimesh_route_errors_total", { route: "m.ok" }), 0);
    assert.equal(valueOf(after, "minimesh_route_busy_workers", { route: "m.ok" }), 0);
    const latency = after.find((f) => f.name === "minimesh_route_duration_seconds")!;
    assert.equal(latency.type, "HISTOGRAM");
    const ok = latency.metrics.find((m) => m.labels.route === "m.ok")!;
    assert.equal(ok.count, 5);
    assert.equal(ok.buckets?.["+Inf"], 5);
    assert.ok((ok.sum ?? -1) >= 0);

    // The caller's side of the same requests, by route and status, and a timeout.
    platform.register("m.slow", () => new Promise((r) => setTimeout(r, 300)));
    await po.request({ to: "m.slow" }, { timeout: 30, timeoutException: false });
    const calls = await scrape(get);
    const requests = (route: string, status: string) =>
      valueOf(calls, "minimesh_client_requests_total", { route, status });
    assert.equal(requests("m.ok", "200"), 5);
    assert.equal(requests("m.fail", "500"), 2);
    assert.equal(requests("m.slow", "408"), 1);
    assert.equal(valueOf(calls, "minimesh_client_request_timeouts_total", { route: "m.slow" }), 1);
    const callerLatency = calls.find((f) => f.name === "minimesh_client_request_duration_seconds")!;
    assert.equal(callerLatency.type, "HISTOGRAM");
    assert.equal(callerLatency.metrics.find((m) => m.labels.route === "m.ok")!.count, 5);
    // The process and the build.
    assert.ok(Number(valueOf(calls, "process_cpu_seconds_total", {})) > 0);
    assert.ok(Number(valueOf(calls, "process_resident_memory_bytes", {})) > 1e6);
    assert.equal(calls.find((f) => f.name === "process_cpu_seconds_total")!.type, "COUNTER");
    const build = calls.find((f) => f.name === "minimesh_build_info")!.metrics[0];
    assert.equal(build.labels.version, VERSION);
    assert.match(build.labels.runtime, /^(deno|node)$/);
  });

  it("counts the HTTP server's requests by method, path and status", async () => {
    const platform = testPlatform();
    const server = await startHttp(platform, {
      port: 0,
      hostname: "127.0.0.1",
      routes: (req) =>
        new URL(req.url).pathname.startsWith("/api/item/") ? new Response("item") : undefined,
      pathLabel: (req) =>
        new URL(req.url).pathname.startsWith("/api/item/") ? "/api/item/:id" : undefined,
    });
    try {
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
        await res.body?.cancel();
        return res.status;
      };
      for (const path of ["/health", "/health", "/nope-1", "/nope-2", "/api/item/1"]) {
        await get(path);
      }
      await get("/api/item/2");
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      const families = parsePrometheus(await res.text());
      const http = (method: string, path: string, status: string) =>
        valueOf(families, "minimesh_http_requests_total", { method, path, status });
      assert.equal(http("GET", "/health", "200"), 2);
      assert.equal(http("GET", "other", "404"), 2, "raw paths never become labels");
      assert.equal(http("GET", "/api/item/:id", "200"), 2);
      const duration = families.find((f) => f.name === "minimesh_http_request_duration_seconds")!;
      assert.equal(duration.metrics.find((m) => m.labels.path === "/health")!.count, 2);
    } finally {
      await server.close();
    }
  });

  it("escapes label values and writes special numbers as the format says", () => {
    const text = prometheusText([{
      name: "t_gauge",
      help: "A help with a \\ and a\nnewline.",
      type: "gauge",
      samples: [
        { labels: { route: 'a"b\\c\nd' }, value: 1.5 },
        { labels: { route: "inf" }, value: Infinity },
        { labels: { route: "nan" }, value: NaN },
      ],
    }]);
    const [f] = parsePrometheus(text);
    assert.equal(f.help, "A help with a \\ and a\nnewline.");
    assert.deepEqual(f.metrics.map((m) => [m.labels.route, m.value]), [
      ['a"b\\c\nd', "1.5"],
      ["inf", "+Inf"],
      ["nan", "NaN"],
    ]);
  });

  it("is protected as the informational endpoints are", async () => {
    const p = testPlatform({ args: ["-Dprotect.info.endpoints=true"] });
    const res = (await actuatorHandler(p)(new Request("http://x/metrics")))!;
    assert.equal(res.status, 401);
  });
});
