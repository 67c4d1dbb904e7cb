/**
 * The trace of an incoming HTTP request, as the headers a {@link PostOffice} continues it from:
 * W3C `traceparent` (with `tracestate`) first, then the Java original's `X-Trace-Id`.
 *
 * A server of `startHttp` opens each request's trace with {@link openHttpTrace}: with an
 * OpenTelemetry SDK, a `SERVER` span named after the method and path (under the span already
 * active, such as Deno's own HTTP span, else the client's `traceparent`); the spans the request
 * causes (the function's, the mesh hop's) are its children. The response carries the
 * `traceparent` of that span, or of the trace the request started, so that a client can find
 * its request in the traces and the logs.
 *
 * @module
 */
import { context, SpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import type { Span } from "@opentelemetry/api";
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from "../bus/trace.ts";
import type { Telemetry } from "../bus/telemetry.ts";

/** One request's trace: the span that stands for its handling, once there is one. */
interface HttpTrace {
  traceId?: string;
  spanId?: string;
  span?: Span;
}

const traces = new WeakMap<Request, HttpTrace>();

/**
 * Opens the trace of a request a server of `startHttp` received: a `SERVER` span when an SDK
 * records spans. Returns what ends it, which also sets `traceparent` on the response.
 */
export function openHttpTrace(
  req: Request,
  name: string,
  telemetry: Telemetry,
): (res: Response) => Response {
  const t: HttpTrace = {};
  traces.set(req, t);
  if (telemetry.tracer !== undefined) {
    const active = trace.getActiveSpan()?.spanContext();
    const w3c = parseTraceparent(req.headers.get("traceparent"), null);
    const parent = active !== undefined && trace.isSpanContextValid(active)
      ? trace.setSpanContext(context.active(), active)
      : w3c === undefined
      ? context.active()
      : trace.setSpanContext(context.active(), {
        traceId: w3c.traceId,
        spanId: w3c.spanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
      });
    t.span = telemetry.tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
    t.traceId = t.span.spanContext().traceId;
    t.spanId = t.span.spanContext().spanId;
  }
  return (res) => {
    if (t.span !== undefined) {
      t.span.setAttribute("http.response.status_code", res.status);
      if (res.status >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
      t.span.end();
    }
    const value = formatTraceparent(t.traceId ?? "", t.spanId ?? "");
    if (value === undefined) return res;
    try {
      res.headers.set("traceparent", value);
      return res;
    } catch {
      // Immutable headers (a fetched response handed on): a copy carries it.
      const copy = new Response(res.body, res);
      copy.headers.set("traceparent", value);
      return copy;
    }
  };
}

/**
 * PostOffice headers (`my_trace_id`, `my_trace_path`, `my_tracestate`, `my_span_id`) that
 * continue the trace an HTTP client started, across the bus and the mesh. Without one, a new
 * trace starts when `start` is true (an application's entry point), else none (`/api/event`,
 * as in the Java original).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { incomingTrace } from "@minimesh/core/actuator";
 * const req = new Request("http://localhost/api/x", {
 *   headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
 * });
 * const headers = incomingTrace(req, "GET /api/x");
 * assert.equal(headers.my_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
 * assert.equal(headers.my_trace_path, "GET /api/x");
 * ```
 */
export function incomingTrace(
  req: Request,
  path: string,
  start = true,
): Record<string, string> {
  const w3c = parseTraceparent(req.headers.get("traceparent"), req.headers.get("tracestate"));
  // A trace id is an id, not a payload: an oversized X-Trace-Id is not taken.
  const given = req.headers.get("x-trace-id")?.trim().slice(0, 64) || undefined;
  const opened = traces.get(req);
  const traceId = w3c?.traceId ?? given ?? opened?.traceId ?? (start ? newTraceId() : undefined);
  if (traceId === undefined) return {};
  const headers: Record<string, string> = { my_trace_id: traceId, my_trace_path: path };
  if (w3c?.state !== undefined) headers.my_tracestate = w3c.state;
  if (opened !== undefined && opened.span === undefined && opened.spanId === undefined) {
    // No SDK: the response names this server's part of the trace by a span id of its own.
    opened.traceId = traceId;
    opened.spanId = newSpanId();
  }
  // The request's own span (with an SDK, in this trace), else the client's, is the parent of
  // the spans this request causes.
  const parent = opened?.span !== undefined && opened.traceId === traceId
    ? opened.spanId
    : w3c?.spanId;
  if (parent !== undefined) headers.my_span_id = parent;
  return headers;
}
