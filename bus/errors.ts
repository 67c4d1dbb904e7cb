/**
 * The library's errors: one base class, {@link MinimeshError}, with a machine-readable `code`
 * and the HTTP-style `status` that an error reply or an `/api/event` answer uses for it. Check
 * with `instanceof` or `code`, never with `name`.
 *
 * @module
 */

/** The `code` of each error class. */
export type ErrorCode =
  | "APP_ERROR"
  | "ROUTE_NOT_FOUND"
  | "TIMEOUT"
  | "INVALID_ROUTE"
  | "INVALID_ENVELOPE"
  | "INVALID_CONFIG";

/** Options of a {@link MinimeshError}. */
export interface MinimeshErrorOptions extends ErrorOptions {
  /** HTTP-style status, 400-599 (others become 500). */
  status: number;
  /** What kind of error it is. */
  code: ErrorCode;
}

/**
 * The base of every error the library throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { MinimeshError, Platform, PostOffice } from "@minimesh/core";
 * const po = new PostOffice({}, new Platform({ dir: "/nonexistent", args: [], env: {} }));
 * try {
 *   await po.request({ to: "no.such.route" }, { timeout: 100 });
 * } catch (e) {
 *   assert(e instanceof MinimeshError && e.code === "ROUTE_NOT_FOUND" && e.status === 404);
 * }
 * ```
 */
export class MinimeshError extends Error {
  /** What kind of error it is. */
  readonly code: ErrorCode;
  /** HTTP-style status code, 400-599. */
  readonly status: number;

  /**
   * Creates an error.
   *
   * @param message What went wrong.
   * @param options Its status, code and `cause`.
   */
  constructor(message: string, options: MinimeshErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    const s = options.status;
    this.status = Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500;
  }
}

/**
 * An error with a status code. Thrown from a function, it becomes an error reply with that status
 * (a plain `Error` becomes status 500).
 *
 * @example Reject bad input with 400
 * ```ts
 * import assert from "node:assert";
 * import { AppError } from "@minimesh/core";
 * const err = new AppError(400, "name is required");
 * assert(err.status === 400 && err.code === "APP_ERROR");
 * ```
 */
export class AppError extends MinimeshError {
  /**
   * Creates an error with a status.
   *
   * @param status HTTP-style status code; values outside 400-599 become 500.
   * @param message What went wrong.
   * @param options Standard error options (`cause`).
   */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, { status, code: "APP_ERROR", cause: options?.cause });
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
export class RouteNotFoundError extends MinimeshError {
  /** The route that was asked for. */
  readonly route: string;
  /**
   * Creates the error for a route nobody serves.
   *
   * @param route The route that was asked for.
   */
  constructor(route: string) {
    super(`Route ${route} not found`, { status: 404, code: "ROUTE_NOT_FOUND" });
    this.route = route;
  }
}

/**
 * A request got no reply in time (status 408). The message is the Java original's
 * `Timeout for N ms`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { RequestTimeoutError } from "@minimesh/core";
 * assert(new RequestTimeoutError(100).status === 408);
 * ```
 */
export class RequestTimeoutError extends MinimeshError {
  /** The timeout that expired, in milliseconds. */
  readonly timeout: number;
  /**
   * Creates the error for a request that got no reply in time.
   *
   * @param timeout The timeout that expired, in milliseconds.
   */
  constructor(timeout: number) {
    super(`Timeout for ${timeout} ms`, { status: 408, code: "TIMEOUT" });
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
 * assert(err.message.includes("Hello") && err.status === 400);
 * ```
 */
export class InvalidRouteError extends MinimeshError {
  /** The rejected route. */
  readonly route: string;
  /**
   * Creates the error for a bad route name.
   *
   * @param route The rejected route.
   * @param reason Which rule it breaks.
   */
  constructor(route: string, reason: string) {
    super(`Invalid route "${route}": ${reason}`, { status: 400, code: "INVALID_ROUTE" });
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
 * assert.throws(() => EventEnvelope.fromBytes(new Uint8Array([0x81])), EnvelopeDecodeError);
 * ```
 */
export class EnvelopeDecodeError extends MinimeshError {
  /**
   * Creates the error for bytes that are not an envelope.
   *
   * @param message What is wrong with the bytes.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(`Invalid event envelope: ${message}`, {
      status: 400,
      code: "INVALID_ENVELOPE",
      cause: options?.cause,
    });
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
export class ConfigError extends MinimeshError {
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
    super(`Invalid config ${key}=${JSON.stringify(value)}: expected ${expected}`, {
      status: 500,
      code: "INVALID_CONFIG",
    });
    this.key = key;
  }
}
