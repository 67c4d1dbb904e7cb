/**
 * JSON responses of the HTTP endpoints, errors in the reference's shape
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

/** A JSON error: `{type: "error", status, message}` with that HTTP status. */
export function jsonError(status: number, message: string): Response {
  return json({ type: "error", status, message }, status);
}
