/**
 * Event over HTTP (reference section 2.4): `POST /api/event` takes a MsgPack envelope (STANDARD
 * or COMPACT) and delivers it to a public route, here or anywhere in the mesh, replying in the
 * caller's format.
 *
 * | case | HTTP status |
 * | --- | --- |
 * | a reply (whatever its own status) | 200, the reply envelope |
 * | `x-async: true` | 202, an envelope whose body is `{type: "async", delivered: true, time}` |
 * | body is not a valid envelope, or has no `to` | 400 |
 * | route is private here | 403 |
 * | no instance serves the route | 404 |
 * | no reply within `x-ttl` ms (default 30,000) | 408 |
 * | body over `event.api.max.bytes` (default 16 MiB) | 413 |
 *
 * Errors found before the envelope could be read are JSON `{type: "error", status, message}`;
 * the others are envelopes in the caller's format.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import type { WireFormat } from "../bus/envelope.ts";
import { statusOf } from "../bus/platform.ts";
import type { Platform } from "../bus/platform.ts";
import { jsonError } from "./responses.ts";
import { PostOffice } from "../bus/post_office.ts";
import { splitAddress } from "../bus/route.ts";

function envelopeResponse(e: EventEnvelope, format: WireFormat, status: number): Response {
  return new Response(e.toBytes(format) as BodyInit, {
    status,
    headers: { "content-type": "application/octet-stream", "x-event-format": format },
  });
}

/** The `POST /api/event` handler of a platform. */
export function eventApi(platform: Platform): (req: Request) => Promise<Response> {
  const max = platform.config.getNumber("event.api.max.bytes", 16 * 1024 * 1024);
  return async (req) => {
    if (req.method !== "POST") return jsonError(405, "Use POST for /api/event");
    const declared = Number(req.headers.get("content-length") ?? 0);
    if (declared > max) return jsonError(413, `Event of ${declared} bytes is over ${max}`);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await req.arrayBuffer());
    } catch (e) {
      return jsonError(400, `Cannot read the request body: ${(e as Error).message}`);
    }
    if (bytes.length > max) return jsonError(413, `Event of ${bytes.length} bytes is over ${max}`);
    let event: EventEnvelope, format: WireFormat;
    try {
      format = EventEnvelope.formatOf(bytes);
      event = EventEnvelope.fromBytes(bytes);
    } catch (e) {
      return jsonError(400, (e as Error).message);
    }
    const fail = (status: number, message: string) =>
      envelopeResponse(new EventEnvelope({ status, body: message }), format, status);
    const to = event.to;
    if (!to) return fail(400, "Missing routing path (to)");
    const { route, origin } = splitAddress(to);
    const local = origin === undefined || origin === platform.origin;
    if (local && platform.hasRoute(route)) {
      if (platform.isPrivate(route)) return fail(403, `Route ${route} is private`);
    } else if (!platform.hasDestination(to)) {
      return fail(404, `Route ${to} not found`);
    }
    const traceId = req.headers.get("x-trace-id") ?? undefined;
    const po = new PostOffice(
      traceId ? { my_trace_id: traceId, my_trace_path: "POST /api/event" } : {},
      platform,
    );
    try {
      if (req.headers.get("x-async") === "true") {
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
      const reply = await po.request(event, ttl, { timeoutException: false });
      return envelopeResponse(reply, format, reply.status === 408 ? 408 : 200);
    } catch (e) {
      return fail(statusOf(e), (e as Error).message);
    }
  };
}
