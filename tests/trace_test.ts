// W3C Trace Context: traceparent / tracestate read at HTTP entry points and /api/event, carried
// across the bus (and so the mesh, which carries the envelope), sent on Event over HTTP; traced
// replies carry the span that answered.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, formatTraceparent, parseTraceparent, PostOffice } from "../mod.ts";
import { actuatorHandler, incomingTrace, startHttp } from "../actuator/mod.ts";
import type { RunningServer } from "../actuator/mod.ts";
import { testPlatform } from "./_helpers.ts";

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
