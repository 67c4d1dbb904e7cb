/**
 * The in-memory event bus: envelopes and their wire format, the platform that hosts functions
 * under route names, the PostOffice that sends, requests, forks-and-joins and broadcasts,
 * configuration and logging.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core/bus";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * platform.register("hello.world", (_headers, body) => ({ echo: body }));
 * const reply = await new PostOffice({}, platform).request({ to: "hello.world", body: 1 }, 1000);
 * assert((reply.body as { echo: number }).echo === 1);
 * ```
 *
 * @module
 */
export { AppConfig, envName, parseProperties } from "./config.ts";
export type { ConfigOptions } from "./config.ts";
export { EventEnvelope, headerValue, toPlain } from "./envelope.ts";
export type { EnvelopeInit, WireFormat } from "./envelope.ts";
export {
  AppError,
  ConfigError,
  EnvelopeDecodeError,
  InvalidRouteError,
  RouteNotFoundError,
  TimeoutError,
} from "./errors.ts";
export { setupLogging } from "./log.ts";
export { libraries, packageVersion, registerLibrary, VERSION } from "./libraries.ts";
export { Platform, statusOf, TEMPORARY_INBOX } from "./platform.ts";
export type { CloudConnector, PlatformOptions, RouteInfo } from "./platform.ts";
export { PostOffice } from "./post_office.ts";
export type { MeshTransport } from "./mesh.ts";
export { isOriginId, newOriginId, routeProblem, splitAddress, validateRoute } from "./route.ts";
export type { LambdaFunction, RequestOptions } from "./types.ts";
