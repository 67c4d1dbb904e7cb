/**
 * Event over HTTP (docs/wire.md, "HTTP"): `POST /api/event` takes a MsgPack envelope (STANDARD
 * or COMPACT) and delivers it to a public route, here or anywhere in the mesh, replying in the
 * caller's format.
 *
 * | case | HTTP status |
 * | --- | --- |
 * | a reply (whatever its own status) | 200, the reply envelope |
 * | `x-async: true` | 202, an envelope whose body is `{type: "async", delivered: true, time}` |
 * | body is not a valid envelope, or has no `to` | 400 |
 * | `x-async` with a `replyTo` that is not a public route or another instance's inbox | 400 |
 * | route is private here | 403 |
 * | no instance serves the route; `route@origin`; a system route (`temporary.inbox`) | 404 |
 * | the mesh is unavailable | 503 |
 * | no reply within `x-ttl` ms (default 30,000) | 408 |
 * | body over `event.api.max.bytes` (default 16 MiB), refused while it streams | 413 |
 *
 * Errors found before the envelope could be read are JSON `{type: "error", status, message}`;
 * the others are envelopes in the caller's format.
 *
 * @module
 */
import { incomingTrace } from "./tracing.ts";
import { EventEnvelope } from "../bus/envelope.ts";
import type { WireFormat } from "../bus/envelope.ts";
import { REGISTRY } from "../protocol/registry.ts";
import { logger, throttled } from "../bus/_log.ts";
import { EnvelopeDecodeError } from "../bus/errors.ts";
import { statusOf, TEMPORARY_INBOX } from "../bus/platform.ts";
import { outsideReplyProblem } from "../bus/_outside.ts";
import type { Platform } from "../bus/platform.ts";
import { jsonError } from "./responses.ts";
import { PostOffice } from "../bus/post_office.ts";

const log = logger("event-api");
const warn = throttled(log, "warn");
const error = throttled(log, "error");

// The reply in the request's form: MsgPack in its key set, or JSON (STANDARD keys; bytes, such
// as a Java exception, cannot be JSON and are left out).
function envelopeResponse(e: EventEnvelope, format: WireFormat | "json", status: number): Response {
  if (format === "json") {
    const map = e.toMap("standard");
    delete map.exception;
    return Response.json(map, { status });
  }
  return new Response(e.toBytes(format) as BodyInit, {
    status,
    headers: { "content-type": "application/octet-stream", "x-event-format": format },
  });
}

// An envelope from JSON text (STANDARD keys, as `toMap("standard")` writes them), nested no
// deeper than `maxDepth`.
function fromJson(bytes: Uint8Array, maxDepth: number): EventEnvelope {
  let map: unknown;
  try {
    map = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new EnvelopeDecodeError(`malformed JSON (${(e as Error).message.slice(0, 80)})`);
  }
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new EnvelopeDecodeError('the JSON must be an object such as {"to": "hello.world"}');
  }
  if (depthOver(map, maxDepth)) {
    throw new EnvelopeDecodeError(`the JSON is nested deeper than ${maxDepth}`);
  }
  return EventEnvelope.fromMap(map as Record<string, unknown>);
}

function depthOver(value: unknown, left: number): boolean {
  if (value === null || typeof value !== "object") return false;
  if (left <= 0) return true;
  for (const v of Object.values(value)) if (depthOver(v, left - 1)) return true;
  return false;
}

// Reads a body, giving up as soon as it crosses `max` bytes (the rest is never buffered).
async function readCapped(req: Request, max: number): Promise<Uint8Array | "too large"> {
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return "too large";
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/**
 * Why an outside client may not send to `to`, as [status, message]; undefined when it may.
 * Only public routes: a public function here, or a route the mesh advertises. Never
 * `route@origin` (that would reach one instance's private or system routes), never a system
 * route such as `temporary.inbox` (replies could be forged).
 */
function refusal(platform: Platform, to: string): [number, string] | undefined {
  if (to.includes("@") || SYSTEM_ROUTES.has(to)) return [404, `Route ${to} not found`];
  if (platform.hasRoute(to)) {
    return platform.isPrivate(to) ? [403, `Route ${to} is private`] : undefined;
  }
  return platform.mesh?.reaches(to) ? undefined : [404, `Route ${to} not found`];
}

const SYSTEM_ROUTES = new Set([TEMPORARY_INBOX, REGISTRY]);

/** The largest event `POST /api/event` takes: `event.api.max.bytes` (16 MiB). */
export function eventApiMaxBytes(platform: Platform): number {
  return platform.config.getNumber("event.api.max.bytes", 16 * 1024 * 1024);
}

/** The `POST /api/event` handler of a platform. */
export function eventApi(platform: Platform): (req: Request) => Promise<Response> {
  const max = eventApiMaxBytes(platform);
  return async (req) => {
    if (req.method !== "POST") return jsonError(405, "Use POST for /api/event");
    const declared = Number(req.headers.get("content-length") ?? 0);
    if (declared > max) return jsonError(413, `Event of ${declared} bytes is over ${max}`);
    let bytes: Uint8Array | "too large";
    try {
      bytes = await readCapped(req, max);
    } catch (e) {
      return jsonError(400, `Cannot read the request body: ${(e as Error).message}`);
    }
    if (bytes === "too large") return jsonError(413, `Event is over ${max} bytes`);
    let event: EventEnvelope, format: WireFormat | "json";
    try {
      if (req.headers.get("content-type")?.startsWith("application/json")) {
        event = fromJson(bytes, platform.decodeOptions.budget?.maxDepth ?? 100);
        format = "json";
      } else {
        // Within the platform's decoding budget first.
        event = EventEnvelope.fromBytes(bytes, platform.decodeOptions);
        format = EventEnvelope.formatOf(bytes);
      }
    } catch (e) {
      // Say what the endpoint takes when the body was neither.
      if (e instanceof EnvelopeDecodeError && /malformed MsgPack/.test(e.message)) {
        return jsonError(
          400,
          `${e.message.slice(0, 120)}: /api/event takes a MsgPack envelope ` +
            `(application/octet-stream) or JSON (content-type: application/json)`,
        );
      }
      // A decoder's own failure (a RangeError, say) is not for the client to read.
      if (e instanceof EnvelopeDecodeError) return jsonError(400, e.message);
      warn("Undecodable event: {message}", { message: (e as Error).message });
      return jsonError(400, "Invalid event");
    }
    const fail = (status: number, message: string) =>
      envelopeResponse(new EventEnvelope({ status, body: message }), format, status);
    const to = event.to;
    if (!to) return fail(400, "Missing routing path (to)");
    const refused = refusal(platform, to);
    if (refused) return fail(...refused);
    const async = req.headers.get("x-async") === "true";
    // A request's reply comes back here (request() sets replyTo); a sent event's reply goes
    // where the client said, which must be somewhere the client could send to itself.
    if (async && event.replyTo !== undefined) {
      const problem = outsideReplyProblem(platform, event.replyTo);
      if (problem !== undefined) return fail(400, problem);
    }
    const po = new PostOffice(incomingTrace(req, "POST /api/event", false), platform);
    try {
      if (async) {
        await po.send(event);
        return envelopeResponse(
          new EventEnvelope({
            status: 202,
            body: { type: "async", delivered: true, time: new Date().toISOString() },
          }),
          format,
          202,
        );
      }
      const ttl = Math.max(100, Number(req.headers.get("x-ttl") ?? 30_000) || 30_000);
      const reply = await po.request(event, { timeout: ttl, timeoutException: false });
      return envelopeResponse(reply, format, reply.status === 408 ? 408 : 200);
    } catch (e) {
      // Our own errors name the problem for the client; anything else stays in the log.
      if (statusOf(e) !== 500) return fail(statusOf(e), (e as Error).message);
      error("Event to {to} failed: {message}", { to, message: (e as Error).message });
      return fail(500, "Internal error");
    }
  };
}
