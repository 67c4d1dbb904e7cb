/**
 * W3C Trace Context (`traceparent`, `tracestate`) mapped onto the envelope's trace id and span
 * id, which Java Mercury peers read and write too: a `traceparent`'s trace id becomes the
 * envelope's `trace_id` (32 lowercase hex, the form Mercury's own trace ids take), its parent id
 * the caller's `span_id`; `tracestate` travels as the envelope tag `tracestate`.
 *
 * @module
 */

/** A trace context read from, or written to, W3C headers. */
export interface TraceContext {
  /** 32 lowercase hex characters, not all zero. */
  traceId: string;
  /** The caller's span: 16 lowercase hex characters, not all zero. */
  spanId: string;
  /** Whether the caller records the trace (flag 01). */
  sampled: boolean;
  /** The vendor-specific `tracestate`, when one came with it. */
  state?: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZEROS = /^0+$/;

/** Whether `id` is a valid W3C trace id: 32 lowercase hex characters, not all zero. */
export function isTraceId(id: string | undefined): id is string {
  return id !== undefined && TRACE_ID.test(id) && !ZEROS.test(id);
}

/** Whether `id` is a valid W3C span id: 16 lowercase hex characters, not all zero. */
export function isSpanId(id: string | undefined): id is string {
  return id !== undefined && SPAN_ID.test(id) && !ZEROS.test(id);
}
// A tracestate has at most 32 members of at most 256 characters each (W3C Trace Context 3.3).
const MAX_STATE = 32 * 257;

/**
 * Reads a `traceparent` header (and its `tracestate`), or undefined when it is absent or invalid:
 * an invalid one is ignored, as the W3C recommendation says, and a new trace starts.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { parseTraceparent } from "./trace.ts";
 * const t = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * assert.equal(t?.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
 * assert.equal(t?.spanId, "00f067aa0ba902b7");
 * assert.equal(parseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), undefined);
 * ```
 */
export function parseTraceparent(
  value: string | null | undefined,
  state?: string | null,
): TraceContext | undefined {
  const m = TRACEPARENT.exec(value?.trim() ?? "");
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is forbidden; version 00 has exactly four fields. Later versions may add fields.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
  const context: TraceContext = {
    traceId,
    spanId,
    sampled: (parseInt(flags, 16) & 1) === 1,
  };
  const s = state?.trim();
  if (s && s.length <= MAX_STATE) context.state = s;
  return context;
}

/**
 * The `traceparent` header for a trace id and the sender's span id, or undefined when the trace id
 * is not a W3C one (a Mercury trace id of another form then travels in `X-Trace-Id` only).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { formatTraceparent } from "./trace.ts";
 * assert.equal(
 *   formatTraceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
 *   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
 * );
 * assert.equal(formatTraceparent("my-trace", "00f067aa0ba902b7"), undefined);
 * ```
 */
export function formatTraceparent(
  traceId: string,
  spanId: string,
  sampled = true,
): string | undefined {
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

/** A new trace id: 32 lowercase hex characters, as Mercury's and W3C's. */
export function newTraceId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** A new span id: 16 lowercase hex characters. */
export function newSpanId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}
