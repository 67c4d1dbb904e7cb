// Spans and metrics through the OpenTelemetry API, with the SDK's in-memory exporters registered
// before the platforms exist (as Deno's OTEL_DENO=true or a Node application's SDK would be).
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { metrics, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { PostOffice } from "../mod.ts";
import { incomingTrace } from "../actuator/mod.ts";
import { testPlatform } from "./_helpers.ts";
import { CLIENT_SPAN, recordSpans, TRACE } from "./_otel.ts";

const { spans, provider: tracerProvider } = recordSpans();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 60_000,
});
const meterProvider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(meterProvider);

after(async () => {
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
});

describe("OpenTelemetry", () => {
  const platform = testPlatform();
  platform.register("t.inner", (_h, body) => body);
  platform.register("t.outer", async (h, body) => {
    const reply = await new PostOffice(h, platform).request({ to: "t.inner", body }, 1000);
    return reply.body;
  });
  platform.register("t.fail", () => {
    throw new Error("refused");
  });

  it("records one span per execution, continuing the client's trace, nested calls as children", async () => {
    spans.reset();
    const req = new Request("http://x/a", {
      headers: { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
    });
    const po = new PostOffice(incomingTrace(req, "GET /a"), platform);
    const reply = await po.request({ to: "t.outer", body: 7 }, 1000);
    assert.equal(reply.body, 7);
    const done = spans.getFinishedSpans();
    const outer = done.find((s) => s.name === "t.outer")!;
    const inner = done.find((s) => s.name === "t.inner")!;
    assert.ok(outer && inner, done.map((s) => s.name).join());
    for (const s of [outer, inner]) assert.equal(s.spanContext().traceId, TRACE);
    assert.equal(outer.parentSpanContext?.spanId, CLIENT_SPAN);
    assert.equal(inner.parentSpanContext?.spanId, outer.spanContext().spanId);
    assert.equal(outer.kind, SpanKind.SERVER);
    assert.equal(outer.attributes["minimesh.route"], "t.outer");
    assert.equal(outer.attributes["minimesh.origin"], platform.origin);
    // The reply names the span that answered.
    assert.equal(reply.spanId, outer.spanContext().spanId);
  });

  it("marks a failed execution as an error with its status", async () => {
    spans.reset();
    const po = new PostOffice({ my_trace_id: TRACE }, platform);
    await po.request({ to: "t.fail" }, { timeout: 1000, timeoutException: false });
    const [failed] = spans.getFinishedSpans();
    assert.equal(failed.name, "t.fail");
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.status.message, "refused");
    assert.equal(failed.attributes["minimesh.status"], 500);
  });

  it("annotateTrace adds to the running execution's span (the Java original's annotations)", async () => {
    spans.reset();
    platform.register("t.annotated", (h) => {
      new PostOffice(h, platform).annotateTrace("order", "o-17").annotateTrace("items", [1, 2]);
      return "ok";
    });
    await new PostOffice({ my_trace_id: TRACE }, platform).request({ to: "t.annotated" }, 1000);
    const [span] = spans.getFinishedSpans().filter((s) => s.name === "t.annotated");
    assert.equal(span.attributes["annotation.order"], "o-17");
    assert.equal(span.attributes["annotation.items"], "[1,2]");
    // After the execution ended, or outside one: nothing, and no error.
    new PostOffice({ my_span_id: span.spanContext().spanId }, platform).annotateTrace("late", 1);
    new PostOffice({}, platform).annotateTrace("none", 1);
    assert.equal(span.attributes["annotation.late"], undefined);
  });

  it("publishes the /metrics figures and execution times as instruments", async () => {
    const po = new PostOffice({}, platform);
    for (let i = 0; i < 3; i++) await po.request({ to: "t.inner", body: i }, 1000);
    await reader.forceFlush();
    const exported = metricExporter.getMetrics().at(-1)!;
    const all = exported.scopeMetrics.flatMap((s) => s.metrics);
    const events = all.find((m) => m.descriptor.name === "minimesh.route.events")!;
    const inner = events.dataPoints.find((p) => p.attributes.route === "t.inner")!;
    assert.ok((inner.value as number) >= 3, `t.inner events: ${inner.value}`);
    const duration = all.find((m) => m.descriptor.name === "minimesh.route.duration")!;
    assert.ok(duration.dataPoints.some((p) => p.attributes["minimesh.route"] === "t.inner"));
    assert.ok(all.some((m) => m.descriptor.name === "minimesh.route.busy.workers"));
  });
});
