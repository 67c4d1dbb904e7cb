/**
 * HTTP for applications: actuator endpoints (`/info`, `/info/lib`, `/info/routes`, `/env`,
 * `/health`, `/livenessprobe`) and Event over HTTP (`POST /api/event`), as plain
 * `Request` → `Response` handlers, plus {@link startHttp} to serve them.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { elapsedText } from "@minimesh/core/actuator";
 * assert.equal(elapsedText(61_000), "1 minute 1 second");
 * ```
 *
 * @module
 */
export { elapsedText, isoSeconds } from "./format.ts";
export { actuatorHandler } from "./handler.ts";
export { json, jsonError } from "./responses.ts";
export type { ActuatorOptions } from "./handler.ts";
export { eventApi } from "./event_api.ts";
export { startHttp } from "./server.ts";
export type { HttpOptions } from "./server.ts";
