/**
 * The trace of an incoming HTTP request, as the headers a {@link PostOffice} continues it from:
 * W3C `traceparent` (with `tracestate`) first, then the Java original's `X-Trace-Id`.
 *
 * @module
 */
import { newTraceId, parseTraceparent } from "../bus/trace.ts";

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
  const traceId = w3c?.traceId ?? given ?? (start ? newTraceId() : undefined);
  if (traceId === undefined) return {};
  const headers: Record<string, string> = { my_trace_id: traceId, my_trace_path: path };
  if (w3c?.state !== undefined) headers.my_tracestate = w3c.state;
  // The client's span is the parent of the spans this request causes.
  if (w3c !== undefined) headers.my_span_id = w3c.spanId;
  return headers;
}
