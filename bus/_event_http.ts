// The client side of Event over HTTP (docs/wire.md, "HTTP"): a request or a fire-and-forget event
// sent to another instance's `/api/event` instead of through the bus, for a route configured as
// an HTTP target or a call given a `url`.
import { EventEnvelope, headerOf } from "./envelope.ts";
import { AppError, RequestTimeoutError } from "./errors.ts";
import { routingOf } from "./platform.ts";
import type { Platform } from "./platform.ts";
import type { HttpTarget } from "./route_config.ts";
import { splitAddress } from "./route.ts";
import { formatTraceparent } from "./trace.ts";

// The trace of an event as HTTP headers: X-Trace-Id as the Java original sends it, and the W3C
// traceparent (with tracestate) when the trace id is a W3C one.
function traceHeaders(e: EventEnvelope): Record<string, string> {
  if (e.traceId === undefined) return {};
  const headers: Record<string, string> = { "x-trace-id": e.traceId };
  const parent = e.spanId && formatTraceparent(e.traceId, e.spanId);
  if (parent) {
    headers.traceparent = parent;
    const state = e.tags.tracestate;
    if (state) headers.tracestate = state;
  }
  return headers;
}

/**
 * Where `e` goes over HTTP, if it does: to `url` when the caller gave one, else to the
 * Event-over-HTTP target configured for its route (`x-event-api` marks an event sent that way, so
 * that the receiving instance does not send it on again).
 */
export function httpDestination(
  platform: Platform,
  e: EventEnvelope,
  kind: "send" | "asyncRequest",
  url: string | undefined,
  headers: Record<string, string> | undefined,
): HttpTarget | undefined {
  if (url !== undefined) return { url, headers: headers ?? {} };
  const { httpTargets } = routingOf(platform);
  if (httpTargets.size === 0 || headerOf(e.headers, "x-event-api") !== undefined) return;
  const target = httpTargets.get(splitAddress(e.to!).route);
  if (target === undefined) return;
  e.headers = { ...e.headers, "x-event-api": kind };
  return { url: target.url, headers: { ...target.headers, ...headers } };
}

/**
 * Event over HTTP: POSTs the envelope (STANDARD) to a remote `/api/event` and decodes the reply,
 * with the caller's correlation id and the round trip.
 */
export async function overHttp(
  platform: Platform,
  e: EventEnvelope,
  timeout: number,
  timeoutException: boolean,
  url: string,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<EventEnvelope> {
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      body: e.toBytes("standard") as BodyInit,
      headers: {
        ...headers,
        "content-type": "application/octet-stream",
        "accept": "application/octet-stream",
        "x-ttl": String(timeout),
        ...traceHeaders(e),
      },
      signal: signal === undefined
        ? AbortSignal.timeout(timeout)
        : AbortSignal.any([signal, AbortSignal.timeout(timeout)]),
    });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    // fetch rejects with the DOM's TimeoutError when AbortSignal.timeout fires.
    if (err instanceof DOMException && err.name === "TimeoutError") {
      if (timeoutException) throw new RequestTimeoutError(timeout);
      return new EventEnvelope({ status: 408, body: `Timeout for ${timeout} ms` });
    }
    throw new AppError(503, `Event over HTTP to ${url} failed: ${(err as Error).message}`);
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  let reply: EventEnvelope;
  if (res.headers.get("content-type")?.startsWith("application/octet-stream")) {
    reply = EventEnvelope.fromBytes(bytes, platform.decodeOptions);
  } else {
    const text = new TextDecoder().decode(bytes);
    let message = text;
    try {
      message = JSON.parse(text).message ?? text;
    } catch { /* not JSON */ }
    reply = new EventEnvelope({ status: res.status >= 400 ? res.status : 500, body: message });
  }
  if (reply.status === 408 && timeoutException) throw new RequestTimeoutError(timeout);
  reply.correlationId = e.correlationId;
  reply.roundTrip = Math.round((performance.now() - started) * 1000) / 1000;
  return reply;
}
