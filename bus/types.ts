/**
 * Types shared by the bus modules.
 *
 * @module
 */
import type { EventEnvelope } from "./envelope.ts";

/**
 * A function served under a route. It receives the event's headers (a copy, with the read-only
 * keys `my_route`, `my_trace_id`, `my_trace_path` and `my_correlation_id` added when known),
 * the body, its instance number (1 to the registered count) and the whole envelope.
 *
 * It returns (or resolves to) the reply body, or an {@link EventEnvelope} to set the reply's
 * status and headers too. A thrown error becomes an error reply: the error's `status`
 * (400-599) or 500, with its message as the body.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import type { LambdaFunction } from "@minimesh/core";
 * const echo: LambdaFunction<string, string> = (_headers, body) => body.toUpperCase();
 * assert(echo({}, "hi", 1, undefined as never) === "HI");
 * ```
 */
export type LambdaFunction<I = unknown, O = unknown> = (
  headers: Record<string, string>,
  body: I,
  instance: number,
  event: EventEnvelope,
) => O | Promise<O>;

/** Options of a drop-and-forget send (`PostOffice.send`). */
export interface SendOptions {
  /**
   * Event over HTTP, fire and forget (the Java original's `rpc=false`): POST the event to this
   * `/api/event` URL with `x-async: true`; the send resolves once that instance accepted it (202).
   */
  url?: string;
  /** Extra HTTP headers for it (authentication, for example). */
  httpHeaders?: Record<string, string>;
  /** Milliseconds to wait for the acceptance (default 10,000). */
  timeout?: number;
  /** Aborts the HTTP call. */
  signal?: AbortSignal;
}

/** Options for a request: its timeout, and optionally a signal to abort it. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply (or, for a fork-and-join, for all replies). */
  timeout: number;
  /**
   * Aborts the request: it rejects with the signal's reason, and a reply that comes later is
   * dropped.
   */
  signal?: AbortSignal;
  /**
   * When true (the default) a timeout rejects with a {@link RequestTimeoutError}; when false it
   * resolves with a 408 envelope (one request) or with the replies that did arrive
   * (fork-and-join).
   */
  timeoutException?: boolean;
  /**
   * Event over HTTP: send the request to this `/api/event` URL (of any instance, in or out of
   * the mesh) instead of through the bus.
   */
  url?: string;
  /** Extra HTTP headers for an Event-over-HTTP request (authentication, for example). */
  httpHeaders?: Record<string, string>;
  /**
   * When the mesh instance serving the request leaves (or is dropped as hung) before it
   * replies, send the request once more to another instance of the route, instead of failing
   * at once with 503; likewise when its partition takes no writes or it cannot reach Kafka, as
   * soon as another instance can take the request. For requests that are safe to run twice: the
   * instance that left may have run it, or may run it when it comes back (a host cut off runs
   * what was queued for it), so the request can be executed twice; the second attempt carries
   * the tag `retry` ("1") in its envelope, which the function sees (`event.tags.retry`). A host
   * that goes silent is dropped within the monitors' `presence.hung.timeout`: a request whose
   * timeout is longer is retried before it times out. Default: whether `request.retry.routes`
   * lists the route. A request to `route@origin` is never retried.
   */
  retry?: boolean;
}
