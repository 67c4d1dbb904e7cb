/**
 * HTTP for applications: actuator endpoints (`/info`, `/info/lib`, `/info/routes`, `/env`,
 * `/health`, `/livenessprobe`) and Event over HTTP (`POST /api/event`), as plain
 * `Request` → `Response` handlers, plus {@link startHttp} to serve them.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform } from "@minimesh/core";
 * import { startHttp } from "@minimesh/core/actuator";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * await using server = await startHttp(platform, { port: 0, hostname: "127.0.0.1" });
 * const res = await fetch(`http://127.0.0.1:${server.port}/livenessprobe`);
 * assert.equal(await res.text(), "OK");
 * ```
 *
 * @module
 */
export { actuatorHandler } from "./handler.ts";
export type { ActuatorOptions } from "./handler.ts";
export { accessRule } from "./access.ts";
export type { AuthorizeRequest, EndpointKind } from "./access.ts";
export { eventApi } from "./event_api.ts";
export { incomingTrace } from "./tracing.ts";
export { jsonError } from "./responses.ts";
export { startHttp } from "./server.ts";
export type { HttpOptions } from "./server.ts";
export type { RunningServer, ServerLimits } from "../runtime/server.ts";
