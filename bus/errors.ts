/**
 * Error classes of the event bus. Each carries the HTTP-style status that an error reply or an
 * `/api/event` answer uses for it.
 *
 * @module
 */

/**
 * An error with a status code. Thrown from a function, it becomes an error reply with that status
 * (a plain `Error` becomes status 500).
 *
 * @example Reject bad input with 400
 * ```ts
 * import assert from "node:assert";
 * import { AppError } from "@minimesh/core";
 * const err = new AppError(400, "name is required");
 * assert(err.status === 400);
 * ```
 */
export class AppError extends Error {
  /** HTTP-style status code, 400 or above. */
  readonly status: number;
  /**
   * Creates an error with a status.
   *
   * @param status HTTP-style status code; values outside 400-599 become 500.
   * @param message What went wrong.
   * @param options Standard error options (`cause`).
   */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AppError";
    this.status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
  }
}

/**
 * No function serves the route (status 404).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { RouteNotFoundError } from "@minimesh/core";
 * assert(new RouteNotFoundError("no.such").message === "Route no.such not found");
 * ```
 */
export class RouteNotFoundError extends AppError {
  /** The route that was asked for. */
  readonly route: string;
  /**
   * Creates the error for a route nobody serves.
   *
   * @param route The route that was asked for.
   */
  constructor(route: string) {
    super(404, `Route ${route} not found`);
    this.name = "RouteNotFoundError";
    this.route = route;
  }
}

/**
 * A request got no reply in time (status 408). The message is the reference's
 * `Timeout for N ms`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { TimeoutError } from "@minimesh/core";
 * assert(new TimeoutError(100).status === 408);
 * ```
 */
export class TimeoutError extends AppError {
  /** The timeout that expired, in milliseconds. */
  readonly timeout: number;
  /**
   * Creates the error for a request that got no reply in time.
   *
   * @param timeout The timeout that expired, in milliseconds.
   */
  constructor(timeout: number) {
    super(408, `Timeout for ${timeout} ms`);
    this.name = "TimeoutError";
    this.timeout = timeout;
  }
}

/**
 * A route name breaks the naming rules (lowercase letters, digits, `.`, `_`, `-`; at least one dot;
 * no leading, trailing or doubled dots; no reserved file names).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { InvalidRouteError } from "@minimesh/core";
 * const err = new InvalidRouteError("Hello", "use lowercase only");
 * assert(err.message.includes("Hello"));
 * ```
 */
export class InvalidRouteError extends TypeError {
  /** Status used when this error is turned into a reply. */
  readonly status = 400;
  /** The rejected route. */
  readonly route: string;
  /**
   * Creates the error for a bad route name.
   *
   * @param route The rejected route.
   * @param reason Which rule it breaks.
   */
  constructor(route: string, reason: string) {
    super(`Invalid route "${route}": ${reason}`);
    this.name = "InvalidRouteError";
    this.route = route;
  }
}

/**
 * Bytes that are not a valid event envelope: malformed or truncated MsgPack, a top level that is
 * not a map, non-string keys, or a field of the wrong type.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { EventEnvelope, EnvelopeDecodeError } from "@minimesh/core";
 * try {
 *   EventEnvelope.fromBytes(new Uint8Array([0x81]));
 * } catch (e) {
 *   assert(e instanceof EnvelopeDecodeError);
 * }
 * ```
 */
export class EnvelopeDecodeError extends TypeError {
  /** Status used when this error is turned into a reply. */
  readonly status = 400;
  /**
   * Creates the error for bytes that are not an envelope.
   *
   * @param message What is wrong with the bytes.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`Invalid event envelope: ${message}`, options);
    this.name = "EnvelopeDecodeError";
  }
}

/**
 * A configuration value that cannot be used, such as an unknown `cloud.connector`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { ConfigError } from "@minimesh/core";
 * assert(new ConfigError("cloud.connector", "x", "none or kafka").message.includes("x"));
 * ```
 */
export class ConfigError extends RangeError {
  /** The configuration key. */
  readonly key: string;
  /**
   * Creates the error for a configuration value that cannot be used.
   *
   * @param key The configuration key.
   * @param value The rejected value.
   * @param expected What would be accepted.
   */
  constructor(key: string, value: unknown, expected: string) {
    super(`Invalid config ${key}=${JSON.stringify(value)}: expected ${expected}`);
    this.name = "ConfigError";
    this.key = key;
  }
}
