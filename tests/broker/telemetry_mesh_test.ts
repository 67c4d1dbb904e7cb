// A trace an HTTP client started (traceparent) continues across the mesh and back: the caller's
// hop and the peer's execution are spans of one trace. First with both mesh members in this
// process, sharing the SDK's in-memory exporter; then through the guide's examples as their own
// processes (rest-example's HTTP endpoint, lambda-example's hello.pojo), each printing its spans.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SpanKind } from "@opentelemetry/api";
import { PostOffice } from "../../mod.ts";
import { incomingTrace } from "../../actuator/mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { meshArgs, meshMember, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { CLIENT_SPAN, recordSpans, TRACE } from "../_otel.ts";

const { spans, provider } = recordSpans();

let monitor: MonitorProcess | undefined;
const connectors: KafkaConnector[] = [];
const examples: DenoProcess[] = [];
after(async () => {
  for (const c of connectors) await c.stop();
  await stopAll([...examples, monitor]);
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
    // The request that was answered (attempts before the mesh was ready leave spans too): its
    // hop back carries the span id the reply came with. That hop's span ends when Kafka
    // acknowledges the write, which may come after the reply was read: wait for it, bounded.
    const traced = () => spans.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE);
    let done = traced();
    for (let i = 0; i < 50 && !done.some((s) => s.spanContext().spanId === reply?.spanId); i++) {
      await new Promise((r) => setTimeout(r, 20));
      done = traced();
    }
    const names = done.map((s) => `${s.name}/${s.kind}`).join(", ");
    const back = done.find((s) => s.spanContext().spanId === reply?.spanId);
    assert.equal(back?.name, "reply hello.pojo", `spans: ${names}`);
    assert.equal(back.attributes["minimesh.hop"], "reply");
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

interface PrintedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

// The spans a process printed (tests/fixtures/traced.ts) in the test's trace.
function printed(p: DenoProcess): PrintedSpan[] {
  return p.logs.filter((l) => l.startsWith("SPAN "))
    .map((l) => JSON.parse(l.slice(5)) as PrintedSpan)
    .filter((s) => s.traceId === TRACE);
}

describe("a trace through the guide's examples, as processes (OpenTelemetry)", () => {
  it("goes from the HTTP client through rest-example, across the mesh, into lambda-example and back", async () => {
    const t = topicsFor("otelex");
    const m = await startMonitor(t.args);
    examples.push(m);
    const args = [
      ...meshArgs(m.port, t.args),
      "-Dserver.port=0",
      "-Dserver.host=127.0.0.1",
      "-Dmandatory.health.dependencies=cloud.connector.health",
    ];
    const start = async (program: string) => {
      const p = spawnDeno("tests/fixtures/traced.ts", [program, ...args]);
      examples.push(p);
      const port = Number(/port (\d+)/.exec(await p.waitFor(/HTTP server running on port/))![1]);
      const origin = /Connected (\w+), ws:/.exec(await p.waitFor(/Connected \w+, ws:/))![1];
      return { p, port, origin };
    };
    const [lambda, rest] = await Promise.all([
      start("examples/lambda_example/main.ts"),
      start("examples/rest_example/main.ts"),
    ]);
    let res: Response | undefined;
    for (let i = 0; i < 100; i++) {
      res = await fetch(`http://127.0.0.1:${rest.port}/api/pojo/mesh/1`, {
        headers: { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
      });
      if (res.status === 200) break;
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(res?.status, 200);
    // The response names the server's span in the client's trace.
    const answered = res!.headers.get("traceparent") ?? "";
    assert.match(answered, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    assert.equal((await res!.json()).id, 1);
    // rest-example's hop to lambda-example, then lambda-example's execution of it and its hop
    // back with the reply; attempts before the mesh was ready leave hops without an execution.
    let chain: string | undefined;
    for (let i = 0; i < 100 && chain === undefined; i++) {
      const execs = printed(lambda.p).filter((s) => s.name === "hello.pojo");
      for (const exec of execs) {
        const hop = printed(rest.p).find((s) => s.spanId === exec.parentSpanId);
        const back = printed(lambda.p).find((s) => s.parentSpanId === exec.spanId);
        if (hop === undefined || back === undefined) continue;
        assert.equal(hop.name, "send hello.pojo");
        assert.equal(hop.kind, SpanKind.PRODUCER);
        // The hop is a child of rest-example's HTTP span, itself the client's span's child.
        const http = printed(rest.p).find((s) => s.spanId === hop.parentSpanId);
        assert.equal(http?.name, "GET /api/pojo/mesh/{id}", "the HTTP span is the hop's parent");
        assert.equal(http.kind, SpanKind.SERVER);
        assert.equal(http.parentSpanId, CLIENT_SPAN, "the client's span is the HTTP span's parent");
        assert.equal(http.attributes["http.response.status_code"], 200);
        assert.equal(hop.attributes["minimesh.peer"], lambda.origin);
        assert.equal(exec.kind, SpanKind.SERVER);
        assert.equal(exec.attributes["minimesh.origin"], lambda.origin);
        assert.equal(back.name, "reply hello.pojo");
        assert.equal(back.attributes["minimesh.peer"], rest.origin, "the reply goes back");
        chain = [hop, exec, back].map((s) => `${s.name} ${s.spanId}`).join(" -> ");
      }
      if (chain === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(
      chain,
      `no chain in rest ${JSON.stringify(printed(rest.p))}, lambda ${
        JSON.stringify(printed(lambda.p))
      }`,
    );
    console.log(`trace ${TRACE}: client ${CLIENT_SPAN} -> ${chain}`);
  });
});
