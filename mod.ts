/**
 * minimesh: an in-memory event bus for Deno and Node and, only when an application opts in
 * (`cloud.connector=kafka`), a minimalist service mesh over Kafka.
 *
 * Functions are registered under route names with N worker instances; a {@link PostOffice}
 * sends events, makes requests with a timeout, forks and joins, and broadcasts. Everything
 * travels as an {@link EventEnvelope}.
 *
 * This entry point is the dependency-light core: it never loads a Kafka client. The mesh is in
 * `@minimesh/core/connector`, the presence monitor in `@minimesh/core/presence`, HTTP in
 * `@minimesh/core/actuator`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * platform.register<string, { body: string; instance: number }>(
 *   "hello.world",
 *   (_headers, body, instance) => ({ body, instance }),
 *   10,
 * );
 * const po = new PostOffice({}, platform);
 * const reply = await po.request<{ body: string }>({ to: "hello.world", body: "hi" }, {
 *   timeout: 5000,
 * });
 * assert(reply.body.body === "hi");
 * ```
 *
 * @module
 */
export { AppConfig } from "./bus/config.ts";
export type { ConfigLayer, ConfigOptions, PropertiesFile } from "./bus/config.ts";
export { DEFAULT_BUDGET, EventEnvelope, headerOf, withoutNullsInMaps } from "./bus/envelope.ts";
export type { DecodeBudget, DecodeOptions, EnvelopeInit, WireFormat } from "./bus/envelope.ts";
export {
  AppError,
  ConfigError,
  EnvelopeDecodeError,
  InvalidRouteError,
  MinimeshError,
  RequestTimeoutError,
  RouteNotFoundError,
} from "./bus/errors.ts";
export type { ErrorCode, MinimeshErrorOptions } from "./bus/errors.ts";
export { setupLogging } from "./bus/log.ts";
export { VERSION } from "./bus/libraries.ts";
export { Platform } from "./bus/platform.ts";
export type {
  CloudConnector,
  PlatformOptions,
  RegisterOptions,
  RouteInfo,
  StopOptions,
  StopParticipant,
} from "./bus/platform.ts";
export { PostOffice } from "./bus/post_office.ts";
export { preload, registerPreloaded } from "./bus/preload.ts";
export type { Composable, ComposableClass, PreloadOptions } from "./bus/preload.ts";
export type { FutureEvent } from "./bus/_future_events.ts";
export type { MeshTransport } from "./bus/mesh.ts";
export { prometheusText } from "./bus/metrics.ts";
export type { MetricFamily, MetricSource, Sample } from "./bus/metrics.ts";
export { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from "./bus/trace.ts";
export type { TraceContext } from "./bus/trace.ts";
export type { LambdaFunction, RequestOptions, SendOptions } from "./bus/types.ts";
