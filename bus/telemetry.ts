/**
 * Spans and metrics through the OpenTelemetry API (`@opentelemetry/api`). Nothing is recorded
 * unless an OpenTelemetry SDK is registered before the {@link Platform} is created (Deno's own
 * with `OTEL_DENO=true`, or the application's on Node): without one, the platform does not call
 * the API on its hot path at all.
 *
 * - One span per function execution (`SERVER` for a request, `CONSUMER` for an event without a
 *   reply), continuing the envelope's trace (its `trace_id`, and its `span_id` as the parent).
 * - One `PRODUCER` span per mesh hop (written by the connector, see `hopSpan`).
 * - The platform's `/metrics` figures as observable instruments, and the execution time of every
 *   function as the histogram `minimesh.route.duration` (seconds).
 *
 * @module
 */
import {
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import type { Attributes, Histogram, Meter, Span, Tracer } from "@opentelemetry/api";
import type { EventEnvelope } from "./envelope.ts";
import type { MetricFamily } from "./metrics.ts";
import { VERSION } from "./libraries.ts";
import { isSpanId, isTraceId } from "./trace.ts";
import { TEMPORARY_INBOX } from "./route.ts";

/** Whether a tracer provider (an SDK) is registered with the API. */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer("minimesh") !== undefined;
}

/** Whether a meter provider (an SDK) is registered with the API. */
function metering(): boolean {
  return metrics.getMeter("minimesh") !== createNoopMeter();
}

/** The spans and instruments of one platform, or nothing when no SDK is registered. */
export class Telemetry {
  /** The tracer, when an SDK records spans. */
  readonly tracer: Tracer | undefined;
  readonly #meter: Meter | undefined;
  readonly #duration: Histogram | undefined;
  readonly #observed = new Set<string>();
  /** The spans of executions still running, by span id: for annotations. */
  readonly #running = new Map<string, Span>();
  #read: (() => MetricFamily[]) | undefined;
  #cached: { at: number; families: MetricFamily[] } | undefined;

  /** Looks for a registered SDK now (so register it before creating the platform). */
  constructor() {
    this.tracer = tracing() ? trace.getTracer("minimesh", VERSION) : undefined;
    this.#meter = metering() ? metrics.getMeter("minimesh", VERSION) : undefined;
    this.#duration = this.#meter?.createHistogram("minimesh.route.duration", {
      description: "Execution time of a function",
      unit: "s",
    });
  }

  /** Whether spans are recorded. */
  get tracing(): boolean {
    return this.tracer !== undefined;
  }

  /** Whether the execution times go to the meter (the clock is read for every event then). */
  get metering(): boolean {
    return this.#duration !== undefined;
  }

  /**
   * Starts the span of one function execution, continuing `traceId` / `parentSpanId` when they
   * are W3C ids (a Mercury trace id of another form starts a new trace).
   */
  startExecution(
    route: string,
    request: boolean,
    traceId: string | undefined,
    parentSpanId: string | undefined,
    attributes: Attributes,
  ): Span | undefined {
    if (this.tracer === undefined) return undefined;
    const span = this.tracer.startSpan(
      route,
      { kind: request ? SpanKind.SERVER : SpanKind.CONSUMER, attributes },
      parentContext(traceId, parentSpanId),
    );
    this.#running.set(span.spanContext().spanId, span);
    return span;
  }

  /** Ends an execution's span (see {@link endSpan}). */
  endExecution(span: Span | undefined, error?: string, status?: number): void {
    if (span === undefined) return;
    this.#running.delete(span.spanContext().spanId);
    endSpan(span, error, status);
  }

  /**
   * Adds `annotation.<key>` to the span of the running execution `spanId` (the Java original's
   * `annotateTrace`); nothing when spans are not recorded or that execution has finished.
   */
  annotate(spanId: string | undefined, key: string, value: unknown): void {
    const span = spanId === undefined ? undefined : this.#running.get(spanId);
    if (span === undefined) return;
    const v = typeof value === "string" || typeof value === "number" || typeof value === "boolean"
      ? value
      : JSON.stringify(value) ?? String(value);
    span.setAttribute(`annotation.${key}`, v);
  }

  /** Records one execution time (ms) for `route`. */
  recordDuration(route: string, ms: number, failed: boolean): void {
    this.#duration?.record(ms / 1000, { "minimesh.route": route, "error": failed });
  }

  /**
   * Publishes `read()`'s counters and gauges as observable instruments; {@link refresh} adds the
   * families that appeared since (a metric source added later).
   */
  observe(read: () => MetricFamily[]): void {
    this.#read = read;
    this.refresh();
  }

  /** Registers instruments for families that have none yet. */
  refresh(): void {
    const meter = this.#meter, read = this.#read;
    if (meter === undefined || read === undefined) return;
    for (const f of read()) {
      if (f.type === "histogram" || this.#observed.has(f.name)) continue;
      this.#observed.add(f.name);
      const options = { description: f.help };
      const instrument = f.type === "counter"
        ? meter.createObservableCounter(otelName(f.name), options)
        : meter.createObservableGauge(otelName(f.name), options);
      instrument.addCallback((result) => {
        const family = this.#families().find((x) => x.name === f.name);
        for (const s of family?.samples ?? []) result.observe(s.value, s.labels);
      });
    }
  }

  // Read once per collection: all the instruments' callbacks run within a few milliseconds.
  #families(): MetricFamily[] {
    if (this.#cached === undefined || Date.now() - this.#cached.at > 100) {
      this.#cached = { at: Date.now(), families: this.#read?.() ?? [] };
    }
    return this.#cached.families;
  }
}

// minimesh_route_events_total -> minimesh.route.events (OpenTelemetry names carry no unit suffix).
function otelName(prometheus: string): string {
  return prometheus.replace(/_total$/, "").replaceAll("_", ".");
}

function parentContext(traceId: string | undefined, spanId: string | undefined) {
  if (!isTraceId(traceId)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    // A trace id without a parent span: the caller's span is unknown, not absent.
    spanId: isSpanId(spanId) ? spanId : "0000000000000001",
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/**
 * A `PRODUCER` span for one mesh hop of a traced event, child of the sender's span, or undefined
 * when spans are not recorded. The event's `span_id` becomes the hop's, so that the execution at
 * the peer is its child.
 */
export function hopSpan(
  telemetry: Telemetry,
  event: EventEnvelope,
  peer: string,
  topic: string,
): Span | undefined {
  // Per event sent: nothing is built unless spans are recorded and the event is traced.
  if (telemetry.tracer === undefined || event.traceId === undefined) return undefined;
  const to = (event.to ?? "").split("@")[0];
  // A reply goes to the caller's inbox: its hop is named after the route that answered.
  const reply = to === TEMPORARY_INBOX;
  const span = telemetry.tracer.startSpan(
    reply ? `reply ${event.from ?? ""}`.trimEnd() : `send ${to}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        "minimesh.peer": peer,
        "minimesh.route": reply ? event.from ?? "" : to,
        "minimesh.hop": reply ? "reply" : "request",
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
      },
    },
    parentContext(event.traceId, event.spanId),
  );
  event.spanId = span.spanContext().spanId;
  return span;
}

/** Ends a span, with an error status when `error` is a message. */
export function endSpan(span: Span | undefined, error?: string, status?: number): void {
  if (span === undefined) return;
  if (status !== undefined) span.setAttribute("minimesh.status", status);
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
