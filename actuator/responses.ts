/**
 * JSON responses of the HTTP endpoints, errors in the Java original's shape
 * (`{type: "error", status, message}`).
 *
 * @module
 */

/** A JSON response. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/**
 * A JSON error in the Java original's shape, `{type: "error", status, message}`, with that HTTP
 * status: what the actuator endpoints and Event over HTTP answer, for applications' own routes
 * to answer alike.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { jsonError } from "@minimesh/core/actuator";
 * const res = jsonError(404, "No such pojo");
 * assert.equal(res.status, 404);
 * assert.equal((await res.json()).message, "No such pojo");
 * ```
 */
export function jsonError(status: number, message: string): Response {
  return json({ type: "error", status, message }, status);
}
