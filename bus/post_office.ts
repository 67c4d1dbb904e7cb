/**
 * The PostOffice: send events, make requests (RPC with a timeout), fork-and-join, broadcast.
 * Created from a function's headers, it carries the trace into nested calls.
 *
 * @module
 */
import { EventEnvelope } from "./envelope.ts";
import type { EnvelopeInit } from "./envelope.ts";
import { AppError } from "./errors.ts";
import { AsyncQueue } from "./_async_queue.ts";
import type { Inbox, MultiWaiter, SingleWaiter } from "./_inbox.ts";
import { futureOf, inboxOf, Platform, routingOf, telemetryOf } from "./platform.ts";
import { substitute } from "./route_config.ts";
import { httpDestination, overHttp } from "./_event_http.ts";
import type { HttpTarget } from "./route_config.ts";
import { logger } from "./_log.ts";
import { splitAddress, validateRoute } from "./route.ts";
import type { RequestOptions, SendOptions } from "./types.ts";
import { newSpanId } from "./trace.ts";
import { failSoon } from "./_fail_soon.ts";

const log = logger("post-office");

// The rpc tag of nearly every request in a process repeats one timeout: keep its text.
let lastTimeout = 0;
let lastTimeoutText = "";
function timeoutText(timeout: number): string {
  if (timeout !== lastTimeout) {
    lastTimeout = timeout;
    lastTimeoutText = String(timeout);
  }
  return lastTimeoutText;
}

// Ends a waiting request when `signal` aborts; the listener goes when the request settles.
function abortWith(signal: AbortSignal, inbox: Inbox, w: SingleWaiter | MultiWaiter): void {
  const onAbort = () => inbox.fail(w, signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const off = () => signal.removeEventListener("abort", onAbort);
  (w.promise as Promise<unknown>).then(off, off);
}

function checkTimeout(timeout: number): void {
  if (typeof timeout !== "number" || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new RangeError(`Timeout must be a positive number of ms, got ${timeout}`);
  }
}

/**
 * Sends events and makes requests. `new PostOffice(headers)` inside a function reads the
 * read-only `my_route`, `my_trace_id`, `my_trace_path` and `my_correlation_id` headers, so
 * events it sends carry the caller's route as `from` and continue the trace.
 *
 * @example A request with a timeout
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * platform.register("math.double", (_h, n) => (n as number) * 2);
 * const po = new PostOffice({}, platform);
 * const reply = await po.request({ to: "math.double", body: 21 }, 1000);
 * assert(reply.body === 42 && !reply.isError);
 * ```
 */
export class PostOffice {
  /** The platform this post office sends through. */
  readonly platform: Platform;
  readonly #route: string | undefined;
  readonly #traceId: string | undefined;
  readonly #tracePath: string | undefined;
  readonly #traceState: string | undefined;
  readonly #spanId: string | undefined;
  readonly #cid: string | undefined;

  /**
   * Creates a post office, usually inside a function from its headers.
   *
   * @param headers A function's headers (or `{my_route, my_trace_id, my_trace_path}` at an
   * edge, such as an HTTP handler starting a trace).
   * @param platform The platform to use; the process-wide one by default.
   */
  constructor(headers: Record<string, string> = {}, platform?: Platform) {
    this.platform = platform ?? Platform.getInstance();
    this.#route = headers.my_route;
    this.#traceId = headers.my_trace_id;
    this.#tracePath = headers.my_trace_path;
    this.#traceState = headers.my_tracestate;
    this.#spanId = headers.my_span_id;
    this.#cid = headers.my_correlation_id;
  }

  /** The route this post office sends from, if it was created inside a function. */
  get route(): string | undefined {
    return this.#route;
  }

  /** The trace id carried into events, if any. */
  get traceId(): string | undefined {
    return this.#traceId;
  }

  // A copy of the caller's event (its maps are the caller's; tags get a fresh map) with the
  // caller's route and trace filled in, as the Java original's touch() does.
  #prepare(input: EventEnvelope | EnvelopeInit): EventEnvelope {
    if (input === null || typeof input !== "object") {
      throw new TypeError(`An event must be an EventEnvelope or an object, got ${input}`);
    }
    const e = new EventEnvelope(input);
    e.tags = input.tags === undefined ? {} : { ...input.tags };
    // Headers are shared with the caller's object; functions only ever see a copy.
    if (!e.to) throw new AppError(400, "Missing routing path (to)");
    const { substitutions } = routingOf(this.platform);
    if (substitutions.size > 0) e.to = substitute(substitutions, e.to);
    if (e.from === undefined) e.from = this.#route;
    if (this.#traceId !== undefined && e.traceId === undefined) {
      e.traceId = this.#traceId;
      e.tracePath = this.#tracePath;
      if (this.#traceState !== undefined) e.tags.tracestate = this.#traceState;
    }
    if (this.#cid !== undefined) e.tags.my_cid = this.#cid;
    // The sender's span: the function's own when spans are recorded (telemetry.ts), else a new
    // one for the hop.
    if (e.traceId !== undefined) e.spanId = this.#spanId ?? newSpanId();
    return e;
  }

  /**
   * Sends an event without waiting for a result (drop-and-forget). With `options.url` it goes as
   * Event over HTTP to that `/api/event`, fire and forget (`x-async: true`), and resolves once
   * that instance accepted it.
   *
   * @throws {RouteNotFoundError} (as a rejection) when no function serves the route.
   * @throws {AppError} (as a rejection) with the remote status when the remote instance does not
   * accept the event over HTTP (404 unknown route, 403 private, 401, ...), 503 when it cannot be
   * reached; {@link RequestTimeoutError} when it does not answer within `options.timeout`.
   * @example
   * ```ts
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("audit.log", () => {});
   * await new PostOffice({}, platform).send({ to: "audit.log", body: "user signed in" });
   * ```
   */
  send(event: EventEnvelope | EnvelopeInit, options?: SendOptions): Promise<void> {
    try {
      const e = this.#prepare(event);
      const http = httpDestination(this.platform, e, "send", options?.url, options?.httpHeaders);
      if (http !== undefined) return this.#sendOverHttp(e, http, options);
      return this.platform.deliver(e) ?? Promise.resolve();
    } catch (e) {
      return failSoon(e);
    }
  }

  // Where an event goes over HTTP, if it does: the caller's `url`, else the
  // `yaml.event.over.http` target of its route. An event sent to such a target is marked
  // `x-event-api` (as the Java original marks it) so that an instance with the same setting that
  // receives it delivers it instead of forwarding it once more.
  // Fire and forget over HTTP (`x-async: true`): the remote instance acknowledges with 202 once
  // it has handed the event on; anything else is the reason it did not.
  async #sendOverHttp(e: EventEnvelope, to: HttpTarget, options?: SendOptions): Promise<void> {
    const timeout = options?.timeout ?? 10_000;
    checkTimeout(timeout);
    const ack = await overHttp(this.platform, e, timeout, true, to.url, {
      ...to.headers,
      "x-async": "true",
    }, options?.signal);
    if (ack.status !== 202) {
      throw new AppError(ack.status === 200 ? 502 : ack.status, ack.error ?? "Not accepted");
    }
  }

  /**
   * Adds `annotation.<key>` to the span of the function this post office was created in (the
   * Java original's `annotateTrace`): recorded when spans are (an OpenTelemetry SDK is
   * registered), nothing otherwise. Objects and lists are written as JSON.
   *
   * @returns This post office, to chain.
   * @example
   * ```ts
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("order.place", (headers) => {
   *   new PostOffice(headers, platform).annotateTrace("order", "o-17");
   *   return "placed";
   * });
   * ```
   */
  annotateTrace(key: string, value: unknown): this {
    telemetryOf(this.platform).annotate(this.#spanId, key, value);
    return this;
  }

  /**
   * Sends an event later: after `delay` milliseconds, or at `at`. It is held in memory (as in the
   * Java original: not persisted; a stop drops it, with a warning) and sent as {@link send}
   * sends it when due, with this post office's route and trace; a failure then is logged.
   * `platform.futureEvents()` lists what waits, `platform.cancelFutureEvent(id)` cancels, and so
   * does aborting `signal`.
   *
   * @returns The event's id.
   * @throws {RangeError} For a bad time, or when 100,000 events wait already.
   * @throws {InvalidRouteError} For a malformed route.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * const seen: unknown[] = [];
   * platform.register("reminder.due", (_h, body) => void seen.push(body));
   * const id = new PostOffice({}, platform).sendLater({ to: "reminder.due", body: 1 }, { delay: 10 });
   * assert.equal(platform.futureEvents()[0].id, id);
   * await new Promise((r) => setTimeout(r, 50));
   * assert.deepEqual(seen, [1]);
   * ```
   */
  sendLater(
    event: EventEnvelope | EnvelopeInit,
    when: { delay?: number; at?: Date; signal?: AbortSignal },
  ): string {
    const e = new EventEnvelope(event);
    if (!e.to) throw new AppError(400, "Missing routing path (to)");
    validateRoute(splitAddress(e.to).route);
    const at = when.at ?? new Date(Date.now() + (when.delay ?? 0));
    if (when.at !== undefined && when.delay !== undefined) {
      throw new RangeError("sendLater takes a delay or a time, not both");
    }
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) {
      throw new RangeError(`Invalid time for sendLater: ${when.at ?? when.delay}`);
    }
    if (when.delay !== undefined && !(Number.isFinite(when.delay) && when.delay >= 0)) {
      throw new RangeError(`Invalid delay for sendLater: ${when.delay} ms`);
    }
    const future = futureOf(this.platform);
    const id = e.id;
    const signal = when.signal;
    signal?.throwIfAborted();
    const onAbort = () => future.cancel(id);
    future.schedule(id, e.to, at, () => {
      // A long-lived signal must not keep a listener per event sent.
      signal?.removeEventListener("abort", onAbort);
      this.send(e).catch((err) =>
        log.warn("Event {id} scheduled for {to} not sent: {message}", {
          id,
          to: e.to,
          message: (err as Error).message,
        })
      );
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    return id;
  }

  /**
   * Waits until `route` is served, here or in the mesh (Java's `waitForProvider`).
   *
   * @returns True once it is, false when `timeout` (ms) passes first.
   * @throws {Error} (as a rejection) the signal's reason when `signal` aborts.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * setTimeout(() => platform.register("late.comer", () => 1), 20);
   * assert(await new PostOffice({}, platform).waitForProvider("late.comer", { timeout: 1000 }));
   * ```
   */
  async waitForProvider(
    route: string,
    options: { timeout: number; signal?: AbortSignal },
  ): Promise<boolean> {
    const end = Date.now() + options.timeout;
    for (;;) {
      options.signal?.throwIfAborted();
      if (this.exists(route)) return true;
      const left = end - Date.now();
      if (left <= 0) return false;
      await new Promise((r) => setTimeout(r, Math.min(100, left)));
    }
  }

  /**
   * The instances that serve `route`: this one (unless `remoteOnly`) when it has it as a public
   * route, and the peers in the mesh (Java's `search`).
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("a.b", () => 1);
   * assert.deepEqual(new PostOffice({}, platform).search("a.b"), [platform.origin]);
   * ```
   */
  search(route: string, options: { remoteOnly?: boolean } = {}): string[] {
    const here = !options.remoteOnly && this.platform.hasRoute(route) &&
        !this.platform.isPrivate(route)
      ? [this.platform.origin]
      : [];
    return [...here, ...(this.platform.mesh?.origins(route) ?? [])];
  }

  /**
   * Sends an event to every instance that serves the route. Without a mesh that is this
   * instance only.
   *
   * @throws {RouteNotFoundError} (as a rejection) when no function serves the route.
   * @example
   * ```ts
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("cache.invalidate", () => {});
   * await new PostOffice({}, platform).broadcast({ to: "cache.invalidate", body: { key: "k" } });
   * ```
   */
  broadcast(event: EventEnvelope | EnvelopeInit): Promise<void> {
    try {
      const e = this.#prepare(event);
      e.tags.broadcast = "1";
      const mesh = this.platform.mesh;
      // Through the mesh when it knows the route (a private local route stays local).
      if (mesh !== undefined && (mesh.reaches(e.to!) || this.#isPublicHere(e.to!))) {
        return mesh.broadcast(e);
      }
      return this.platform.deliver(e) ?? Promise.resolve();
    } catch (e) {
      return failSoon(e);
    }
  }

  #isPublicHere(route: string): boolean {
    return this.platform.hasRoute(route) && !this.platform.isPrivate(route);
  }

  /**
   * Makes a request and resolves with the reply envelope. An error reply (the function threw)
   * resolves too: check `reply.isError` and `reply.status`. `Res` types the reply's body.
   *
   * Given a list of events it is a fork-and-join: all are sent at once and the replies come
   * back in request order, each carrying its request's correlation id ({@link forkJoin} yields
   * them as they arrive instead).
   *
   * The timeout may also be given alone, as in the Java original: `request(event, 5000)`.
   *
   * @param event The request, or a list of requests for a fork-and-join.
   * @param options `timeout` in ms (or the timeout alone); `signal` aborts; `timeoutException: false` resolves a timeout
   * with a 408 envelope (or, for a fork-and-join, with the replies that arrived) instead of
   * rejecting; `url` sends it as Event over HTTP.
   * @throws {RequestTimeoutError} (as a rejection) when no reply arrives in time.
   * @throws {RouteNotFoundError} (as a rejection) when no function serves a route; a
   * fork-and-join then sends nothing.
   * @example A typed request with a timeout and a signal
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register<number, number>("math.double", (_h, n) => n * 2);
   * const po = new PostOffice({}, platform);
   * const controller = new AbortController();
   * const reply = await po.request<number>(
   *   { to: "math.double", body: 21 },
   *   { timeout: 1000, signal: controller.signal },
   * );
   * const n: number = reply.body;
   * assert(n === 42 && !reply.isError);
   * ```
   * @example Fork-and-join
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register<number, number>("math.square", (_h, n) => n ** 2, 3);
   * const po = new PostOffice({}, platform);
   * const events = [2, 3, 4].map((n) => ({ to: "math.square", body: n }));
   * const replies = await po.request<number>(events, { timeout: 1000 });
   * assert(replies.map((r) => r.body).join() === "4,9,16");
   * ```
   */
  request<Res = unknown>(
    event: EventEnvelope | EnvelopeInit,
    options: RequestOptions | number,
  ): Promise<EventEnvelope<Res>>;
  /** Fork-and-join: sends every event and resolves with the replies in request order. */
  request<Res = unknown>(
    events: readonly (EventEnvelope | EnvelopeInit)[],
    options: RequestOptions | number,
  ): Promise<EventEnvelope<Res>[]>;
  request(
    input: EventEnvelope | EnvelopeInit | readonly (EventEnvelope | EnvelopeInit)[],
    options: RequestOptions | number,
  ): Promise<EventEnvelope | EventEnvelope[]> {
    try {
      if (typeof options === "number") options = { timeout: options };
      const timeout = options?.timeout;
      checkTimeout(timeout);
      const timeoutException = options.timeoutException !== false;
      const signal = options.signal;
      signal?.throwIfAborted();
      if (Array.isArray(input)) {
        if (input.length === 0) return Promise.resolve([]);
        return this.#fork(input, timeout, timeoutException, signal).promise;
      }
      const e = this.#prepare(input as EventEnvelope | EnvelopeInit);
      const http = httpDestination(
        this.platform,
        e,
        "asyncRequest",
        options?.url,
        options?.httpHeaders,
      );
      if (http !== undefined) {
        return overHttp(
          this.platform,
          e,
          timeout,
          timeoutException,
          http.url,
          http.headers,
          signal,
        );
      }
      const inbox = inboxOf(this.platform);
      const timed = e.traceId !== undefined || this.platform.mesh !== undefined;
      const w = inbox.single(timeout, timeoutException, e.correlationId, timed, e.to);
      e.correlationId = String(w.id);
      e.replyTo = this.platform.inboxAddress;
      e.tags.rpc = timeoutText(timeout);
      if (
        this.platform.mesh !== undefined && !e.to!.includes("@") &&
        (options?.retry ?? this.platform.retriesByDefault(e.to!))
      ) w.retry = e;
      let sent: void | Promise<void>;
      try {
        sent = this.platform.deliver(e);
      } catch (err) {
        inbox.cancel(w);
        throw err;
      }
      // A mesh send that fails ends the request at once, with the reason, unless the request
      // went to another instance meanwhile (its peer stalled): that attempt answers.
      const retryable = w.retry !== undefined;
      sent?.catch((err) => {
        if (!retryable || w.retry !== undefined) inbox.fail(w, err);
      });
      if (signal !== undefined) abortWith(signal, inbox, w);
      return w.promise;
    } catch (e) {
      return failSoon(e);
    }
  }

  /**
   * Fork-and-join as an async iterable: sends every event at once and yields each reply as it
   * arrives (each carries its request's correlation id). After the timeout it throws a
   * {@link RequestTimeoutError} (or, with `timeoutException: false`, just ends).
   *
   * @throws {RouteNotFoundError} (from the first `next()`) when no function serves a route;
   * nothing is sent then.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register<number, number>("math.slow.square", async (_h, n) => {
   *   await new Promise((r) => setTimeout(r, 10 * n));
   *   return n * n;
   * }, 3);
   * const po = new PostOffice({}, platform);
   * const events = [3, 1, 2].map((n) => ({ to: "math.slow.square", body: n }));
   * const seen: number[] = [];
   * for await (const reply of po.forkJoin<number>(events, { timeout: 1000 })) seen.push(reply.body);
   * assert.deepEqual(seen, [1, 4, 9]);
   * ```
   */
  forkJoin<Res = unknown>(
    events: readonly (EventEnvelope | EnvelopeInit)[],
    options: RequestOptions,
  ): AsyncIterableIterator<EventEnvelope<Res>> {
    const queue = new AsyncQueue<EventEnvelope<Res>>(events.length);
    try {
      checkTimeout(options?.timeout);
      options.signal?.throwIfAborted();
      if (events.length === 0) {
        queue.end();
        return queue;
      }
      const w = this.#fork(
        events,
        options.timeout,
        options.timeoutException !== false,
        options.signal,
      );
      w.each = (reply) => queue.push(reply as EventEnvelope<Res>);
      w.promise.then(() => queue.end(), (e) => queue.end(e));
    } catch (e) {
      queue.end(e);
    }
    return queue;
  }
  #fork(
    inputs: readonly (EventEnvelope | EnvelopeInit)[],
    timeout: number,
    timeoutException: boolean,
    signal: AbortSignal | undefined,
  ): MultiWaiter {
    const events = inputs.map((i) => this.#prepare(i));
    for (const e of events) {
      if (!this.platform.hasDestination(e.to!)) this.platform.deliver(e); // throws the reason
    }
    const inbox = inboxOf(this.platform);
    const w = inbox.multi(
      timeout,
      timeoutException,
      events.map((e) => e.correlationId),
      events.map((e) => e.to),
    );
    events.forEach((e, i) => {
      e.correlationId = `${w.id}-${i + 1}`;
      e.replyTo = this.platform.inboxAddress;
      e.tags.rpc = String(timeout);
      this.platform.deliver(e)?.catch((err) => inbox.fail(w, err));
    });
    if (signal !== undefined) abortWith(signal, inbox, w);
    return w;
  }

  /**
   * True when every route exists, here or (with a mesh) in a peer. A name without a dot is
   * an origin id, which exists when it is this instance's or a known peer's.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("a.b", () => 1);
   * const po = new PostOffice({}, platform);
   * assert(po.exists("a.b") && !po.exists("a.b", "c.d"));
   * ```
   */
  exists(...routes: string[]): boolean {
    if (routes.length === 0) return false;
    return routes.every((r) =>
      r.includes(".")
        ? this.platform.hasDestination(r)
        : r === this.platform.origin || this.platform.mesh?.knows(r) === true
    );
  }
}
