// W3C Trace Context: traceparent / tracestate read at HTTP entry points and /api/event, carried
// across the bus (and so the mesh, which carries the envelope), sent on Event over HTTP; traced
// replies carry the span that answered.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, formatTraceparent, parseTraceparent, PostOffice } from "../mod.ts";
import { actuatorHandler, incomingTrace, startHttp } from "../actuator/mod.ts";
import type { RunningServer } from "../actuator/mod.ts";
import { testPlatform } from "./_helpers.ts";
import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getLogger } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const HEADERS = { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: "vendor=opaque,b=2" };

describe("traceparent", () => {
  it("is read as the W3C recommendation says: invalid ones are ignored", () => {
    assert.deepEqual(parseTraceparent(HEADERS.traceparent, HEADERS.tracestate), {
      traceId: TRACE,
      spanId: PARENT,
      sampled: true,
      state: "vendor=opaque,b=2",
    });
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-00`)?.sampled, false);
    // A later version may append fields; version 00 may not.
    assert.equal(parseTraceparent(`01-${TRACE}-${PARENT}-01-more`)?.traceId, TRACE);
    for (
      const bad of [
        undefined,
        "",
        `00-${TRACE}-${PARENT}-01-more`,
        `ff-${TRACE}-${PARENT}-01`,
        `00-${TRACE.toUpperCase()}-${PARENT}-01`,
        `00-${"0".repeat(32)}-${PARENT}-01`,
        `00-${TRACE}-${"0".repeat(16)}-01`,
        `00-${TRACE.slice(1)}-${PARENT}-01`,
      ]
    ) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
    assert.equal(parseTraceparent(HEADERS.traceparent, "x".repeat(10_000))?.state, undefined);
  });

  it("is written only for W3C trace ids", () => {
    assert.equal(formatTraceparent(TRACE, PARENT), HEADERS.traceparent);
    assert.equal(formatTraceparent(TRACE, PARENT, false), `00-${TRACE}-${PARENT}-00`);
    assert.equal(formatTraceparent("a Mercury trace", PARENT), undefined);
  });

  it("starts a trace at an application's entry point, or continues the client's", () => {
    const url = "http://x/api/a";
    const fresh = incomingTrace(new Request(url), "GET /api/a");
    assert.match(fresh.my_trace_id, /^[0-9a-f]{32}$/);
    assert.deepEqual(incomingTrace(new Request(url), "POST /api/event", false), {});
    assert.deepEqual(incomingTrace(new Request(url, { headers: HEADERS }), "GET /api/a"), {
      my_trace_id: TRACE,
      my_trace_path: "GET /api/a",
      my_tracestate: "vendor=opaque,b=2",
      my_span_id: PARENT,
    });
    const java = incomingTrace(new Request(url, { headers: { "x-trace-id": "t-1" } }), "GET /");
    assert.equal(java.my_trace_id, "t-1");
  });
});

describe("a trace across the bus and Event over HTTP", () => {
  const server = testPlatform();
  const caller = testPlatform();
  let http: RunningServer;
  let seenHeaders: Headers | undefined;
  before(async () => {
    // What a function sees of the trace, and a nested call that must continue it.
    server.register("trace.seen", (h) => ({ id: h.my_trace_id, state: h.my_tracestate }));
    server.register("trace.nested", async (h) => {
      const reply = await new PostOffice(h, server).request({ to: "trace.seen" }, 1000);
      return reply.body;
    });
    http = await startHttp(server, {
      port: 0,
      hostname: "127.0.0.1",
      // Lets every request through, keeping its headers for the test.
      authorize: (req) => {
        seenHeaders = req.headers;
        return true;
      },
    });
  });
  after(async () => {
    await http.close();
  });

  it("reaches nested calls with the same trace id and tracestate; replies carry a span", async () => {
    const po = new PostOffice(
      incomingTrace(new Request("http://x", { headers: HEADERS }), "T"),
      server,
    );
    const reply = await po.request({ to: "trace.nested" }, 1000);
    assert.deepEqual(reply.body, { id: TRACE, state: "vendor=opaque,b=2" });
    assert.equal(reply.traceId, TRACE);
    assert.match(reply.spanId ?? "", /^[0-9a-f]{16}$/);
  });

  it("reads traceparent on /api/event and sends it on Event over HTTP", async () => {
    // A client that sends the W3C headers and an envelope without a trace.
    const handle = actuatorHandler(server);
    const res = (await handle(
      new Request("http://x/api/event", {
        method: "POST",
        headers: { ...HEADERS, "content-type": "application/octet-stream" },
        body: new EventEnvelope({ to: "trace.nested" }).toBytes() as BodyInit,
      }),
    ))!;
    const viaHeaders = EventEnvelope.fromBytes(new Uint8Array(await res.arrayBuffer()));
    assert.deepEqual(viaHeaders.body, { id: TRACE, state: "vendor=opaque,b=2" });
    // minimesh as the client: the trace travels as traceparent and tracestate.
    const po = new PostOffice(
      incomingTrace(new Request("http://x", { headers: HEADERS }), "T"),
      caller,
    );
    const reply = await po.request({ to: "trace.seen" }, {
      timeout: 2000,
      url: `http://127.0.0.1:${http.port}/api/event`,
    });
    assert.deepEqual(reply.body, { id: TRACE, state: "vendor=opaque,b=2" });
    const sent = parseTraceparent(seenHeaders?.get("traceparent"), seenHeaders?.get("tracestate"));
    assert.equal(sent?.traceId, TRACE);
    // Without an OpenTelemetry SDK nothing here records a span: the client's stays the parent.
    assert.equal(sent?.spanId, PARENT);
    assert.equal(sent?.state, "vendor=opaque,b=2");
    assert.equal(seenHeaders?.get("x-trace-id"), TRACE);
  });
});

describe("an HTTP request's trace in its response and in the log", () => {
  it("answers with traceparent: the client's trace, this server's span", async () => {
    const platform = testPlatform();
    let seen: Record<string, string> = {};
    platform.register("tr.seen", (h) => {
      seen = h;
      return "ok";
    });
    const server = await startHttp(platform, {
      port: 0,
      hostname: "127.0.0.1",
      routes: async (req) => {
        if (new URL(req.url).pathname !== "/go") return undefined;
        const po = new PostOffice(incomingTrace(req, "GET /go"), platform);
        return Response.json((await po.request({ to: "tr.seen" }, 1000)).body);
      },
    });
    try {
      const continued = await fetch(`http://127.0.0.1:${server.port}/go`, { headers: HEADERS });
      await continued.body?.cancel();
      const back = parseTraceparent(continued.headers.get("traceparent"), null);
      assert.equal(back?.traceId, TRACE);
      assert.notEqual(back?.spanId, PARENT, "this server's span, not the client's");
      assert.equal(seen.my_trace_id, TRACE);
      // Without a trace from the client, the one the request started.
      const started = await fetch(`http://127.0.0.1:${server.port}/go`);
      await started.body?.cancel();
      assert.equal(
        parseTraceparent(started.headers.get("traceparent"), null)?.traceId,
        seen.my_trace_id,
      );
      // A request that traced nothing answers without one.
      const health = await fetch(`http://127.0.0.1:${server.port}/health`);
      await health.body?.cancel();
      assert.equal(health.headers.get("traceparent"), null);
    } finally {
      await server.close();
    }
  });

  it("puts the trace id on every log line written while a traced event is handled", async () => {
    const records: LogRecord[] = [];
    await configure({
      reset: true,
      contextLocalStorage: new AsyncLocalStorage(),
      sinks: { memory: (r: LogRecord) => records.push(r) },
      loggers: [
        { category: ["minimesh"], sinks: ["memory"], lowestLevel: "info" },
        { category: ["app"], sinks: ["memory"], lowestLevel: "info" },
        { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
      ],
    });
    try {
      const platform = testPlatform();
      platform.register("tr.logs", async () => {
        getLogger(["app"]).info("before the wait");
        await new Promise((r) => setTimeout(r, 5));
        getLogger(["app"]).info("after the wait");
        throw new Error("no");
      });
      await new PostOffice({ my_trace_id: TRACE, my_trace_path: "GET /x" }, platform)
        .send({ to: "tr.logs" });
      await new PostOffice({}, platform).send({ to: "tr.logs" });
      for (let i = 0; i < 50 && records.length < 7; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const traced = records.filter((r) => r.properties.trace_id === TRACE);
      assert.deepEqual(
        traced.map((r) => r.category.join(".")),
        ["app", "app", "minimesh.platform"].slice(0, traced.length),
      );
      assert.equal(traced.length, 3, records.map((r) => r.message.join("")).join("\n"));
      assert.equal(traced[0].properties.trace_path, "GET /x");
      const untraced = records.filter((r) =>
        r.properties.trace_id === undefined &&
        (r.category[0] === "app" || r.message.join("").includes("failed on event"))
      );
      assert.equal(untraced.length, 3, "the untraced event's lines have none");
    } finally {
      await configure({ reset: true, sinks: {}, loggers: [] });
    }
  });
});
