// A trace an HTTP client started (traceparent) continues across the mesh and back: the caller's
// hop and the peer's execution are spans of one trace in the SDK's in-memory exporter. Both mesh
// members run in this process (as the rest and lambda examples would in two), sharing one
// exporter.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { PostOffice } from "../../mod.ts";
import { incomingTrace } from "../../actuator/mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { meshArgs, meshMember, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { stopAll } from "../_processes.ts";
import { CLIENT_SPAN, recordSpans, TRACE } from "../_otel.ts";

const { spans, provider } = recordSpans();

let monitor: MonitorProcess | undefined;
const connectors: KafkaConnector[] = [];
after(async () => {
  for (const c of connectors) await c.stop();
  await stopAll([monitor]);
  await provider.shutdown();
});

describe("a trace across the mesh (OpenTelemetry)", () => {
  it("links the client's span, the caller's hop and the peer's execution in one trace", async () => {
    const t = topicsFor("otel");
    monitor = await startMonitor(t.args);
    const args = meshArgs(monitor.port, t.args);
    const lambda = await meshMember("lambda", args, (p) => {
      p.register("hello.pojo", (h) => ({ id: h.id, trace: h.my_trace_id }));
    });
    const rest = await meshMember("rest", args);
    connectors.push(lambda.connector, rest.connector);
    const req = new Request("http://x/api/pojo/mesh/1", {
      headers: { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
    });
    const po = new PostOffice(incomingTrace(req, "GET /api/pojo/mesh/1"), rest.platform);
    let reply;
    for (let i = 0; i < 100; i++) {
      reply = await po.request({ to: "hello.pojo", headers: { id: "1" } }, 3000).catch(() =>
        undefined
      );
      if (reply !== undefined && !reply.isError) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(reply?.body, { id: "1", trace: TRACE });
    const done = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE);
    const names = done.map((s) => `${s.name}/${s.kind}`).join(", ");
    // The request that was answered (attempts before the mesh was ready leave spans too): its
    // hop back carries the span id the reply came with.
    const back = done.find((s) => s.spanContext().spanId === reply?.spanId);
    assert.equal(back?.name, "send temporary.inbox", `spans: ${names}`);
    const byId = (id: string | undefined) => done.find((s) => s.spanContext().spanId === id);
    const exec = byId(back.parentSpanContext?.spanId);
    assert.equal(exec?.name, "hello.pojo", `the hop back's parent; spans: ${names}`);
    assert.equal(exec.kind, SpanKind.SERVER);
    assert.equal(exec.attributes["minimesh.origin"], lambda.platform.origin);
    const hop = byId(exec.parentSpanContext?.spanId);
    assert.equal(hop?.name, "send hello.pojo", `the execution's parent; spans: ${names}`);
    assert.equal(hop.kind, SpanKind.PRODUCER);
    assert.equal(hop.attributes["minimesh.peer"], lambda.platform.origin);
    assert.equal(hop.parentSpanContext?.spanId, CLIENT_SPAN);
  });
});
