/**
 * The platform: one application instance's identity (origin id, name, version), its
 * configuration, and the functions registered under route names with their workers.
 *
 * @module
 */
import { FutureEvents } from "./_future_events.ts";
import { routeConfig } from "./route_config.ts";
import type { RouteConfig } from "./route_config.ts";
import type { FutureEvent } from "./_future_events.ts";
import { Inbox } from "./_inbox.ts";
import { routeMetrics, ServiceQueue } from "./_service_queue.ts";
import { processMetrics } from "./process_metrics.ts";
import { AppConfig } from "./config.ts";
import type { ConfigOptions } from "./config.ts";
import { configuredBudget } from "./_budget.ts";
import type { EventEnvelope } from "./envelope.ts";
import type { DecodeOptions } from "./envelope.ts";
import { AppError, InvalidRouteError, RouteNotFoundError } from "./errors.ts";
import { logger } from "./_log.ts";
import {
  newOriginId,
  routeProblem,
  splitAddress,
  TEMPORARY_INBOX,
  validateRoute,
} from "./route.ts";
import type { MetricFamily, MetricSource } from "./metrics.ts";
import { Telemetry } from "./telemetry.ts";
import { Executor } from "./_executor.ts";
import { misspeltKey } from "./_known_keys.ts";
import { stopInOrder } from "./_stop.ts";
import type { StopOptions, StopParticipant } from "./_stop.ts";
import { loadMulticast } from "./_multicast.ts";
import type { LambdaFunction } from "./types.ts";
import type { MeshTransport } from "./mesh.ts";

const log = logger("platform");

export { TEMPORARY_INBOX } from "./route.ts";

/** The mesh choices of `cloud.connector`. */
export type CloudConnector = "none" | "kafka";

/** Options for a {@link Platform}: where its configuration comes from, and its identity. */
export interface PlatformOptions extends ConfigOptions {
  /** A ready configuration; when given, the {@link ConfigOptions} fields are ignored. */
  config?: AppConfig;
  /**
   * A stable application instance id; the origin id's hex part is then derived from it
   * (SHA-256) instead of being random.
   */
  appId?: string;
}

/** How a function is registered, besides its route (`register(route, fn, options)`). */
export interface RegisterOptions {
  /** How many events it may run at once (default 1). */
  instances?: number;
  /**
   * An interceptor (the Java original's `@EventInterceptor`): what it returns is not sent as the
   * reply. It gets the event with its `replyTo` and `correlationId`, and replies itself (at once,
   * later, or from another function) by sending an event to `replyTo` with that correlation id,
   * or not at all.
   */
  interceptor?: boolean;
}

// The interceptor sees the request as it came; the bus, seeing no replyTo, sends no reply (and
// logs a failure, as it does for an event without a reply).
function interceptor(fn: LambdaFunction): LambdaFunction {
  return (headers, body, instance, event) => {
    const seen = event.copy();
    event.replyTo = undefined;
    return fn(headers, body, instance, seen);
  };
}

/** What {@link Platform.routes} tells about one registered route. */
export interface RouteInfo {
  /** The route name. */
  route: string;
  /** How many events it may run at once. */
  instances: number;
  /** Whether it is private (never advertised to the mesh). */
  isPrivate: boolean;
  /** Instances running an event now. */
  busy: number;
  /** Events waiting for a free instance. */
  backlog: number;
  /** Events its function finished since the start. */
  events: number;
  /** Of those, the ones it threw or rejected on. */
  errors: number;
}

const MAX_INSTANCES = 10_000;

export { statusOf } from "./_executor.ts";

// Why nothing serves `to`: no route at all, a malformed route name, or an unknown one.
function notFound(to: string | undefined): Error {
  if (!to) return new AppError(400, "Missing routing path (to)");
  const { route } = splitAddress(to);
  const problem = routeProblem(route);
  return problem === undefined ? new RouteNotFoundError(to) : new InvalidRouteError(route, problem);
}
export type { StopOptions, StopParticipant } from "./_stop.ts";

let defaultPlatform: Platform | undefined;
/** Platforms made so far (to warn when the default comes after others). */
let made = 0;

/** The pending-request inbox of a platform (for the PostOffice and the mesh connector; not part of the public API). */
export let inboxOf: (platform: Platform) => Inbox;
/** The OpenTelemetry spans and instruments of a platform (for the connector's hop spans). */
export let telemetryOf: (platform: Platform) => Telemetry;
/** The events a platform holds for later (for `PostOffice.sendLater`). */
export let futureOf: (platform: Platform) => FutureEvents;
/** Route substitutions and Event-over-HTTP targets of a platform (for the PostOffice). */
export let routingOf: (platform: Platform) => RouteConfig;

/**
 * One application instance: configuration, origin id and registered functions.
 *
 * @example Register a function and call it
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * platform.register("hello.world", (_headers, body) => `hello ${body}`, 2);
 * const reply = await new PostOffice({}, platform).request({ to: "hello.world", body: "you" }, 1000);
 * assert(reply.body === "hello you");
 * ```
 */
export class Platform implements AsyncDisposable {
  /** Where configuration values come from. */
  readonly config: AppConfig;
  /** This instance's origin id: `yyyyMMdd` + 32 hex. */
  readonly origin: string;
  /** The stable application instance id it was given ({@link PlatformOptions.appId}), if any. */
  readonly appId: string | undefined;
  /** `application.name` (or `spring.application.name`), default `application`. */
  readonly name: string;
  /** `info.app.version` (or `application.version`), default `1.0.0`. */
  readonly version: string;
  /** `cloud.connector`: `none` (default) or `kafka`. */
  readonly cloudConnector: CloudConnector;
  /** When this platform was created. */
  readonly startTime: Date = new Date();
  /**
   * The port of the HTTP server `startHttp` runs for this platform, while it runs: the monitor's
   * dashboard links to its endpoints.
   */
  httpPort: number | undefined = undefined;
  /** The reply address of this instance's temporary inbox. */
  readonly inboxAddress: string;
  /**
   * `serializer.null.transport` (default false, as in the Java original): whether bodies read
   * from the mesh or Event over HTTP keep null values in their maps.
   */
  readonly nullTransport: boolean;
  /**
   * How events from outside this process (the mesh, Event over HTTP) are decoded: with
   * {@link Platform.nullTransport}, and within `event.decode.max.depth` (100) and
   * `event.decode.max.bytes` (40 MiB of estimated heap; see docs/security.md).
   */
  readonly decodeOptions: Readonly<DecodeOptions>;
  readonly #inbox: Inbox = new Inbox();
  readonly #future = new FutureEvents();
  readonly #routing: RouteConfig;
  readonly #metricSources = new Set<MetricSource>();
  readonly #routes = new Map<string, ServiceQueue>();
  #mesh: MeshTransport | undefined;
  readonly #participants: StopParticipant[] = [];
  #stopped: Promise<void> | undefined;
  /** `route.queue.limit`: events one route may hold waiting for a free instance. */
  readonly #queueLimit: number;
  /** `request.retry.routes`: routes whose requests are retried on another instance by default. */
  readonly #retryRoutes: ReadonlySet<string>;
  readonly #telemetry = new Telemetry();
  readonly #executor: Executor;

  /**
   * Reads the configuration and, when there is a `multicast.yaml`, sets up its relays.
   *
   * @throws {ConfigError} For configuration that cannot be used (an unknown `cloud.connector`,
   * a malformed file).
   */
  constructor(options: PlatformOptions = {}) {
    this.config = options.config ?? new AppConfig(options);
    this.cloudConnector = this.config.getChoice("cloud.connector", ["none", "kafka"], "none");
    this.name = this.config.getString("application.name") ??
      this.config.getString("spring.application.name", "application");
    this.version = this.config.getString("info.app.version") ??
      this.config.getString("application.version", "1.0.0");
    this.appId = options.appId;
    this.origin = newOriginId(options.appId);
    this.inboxAddress = `${TEMPORARY_INBOX}@${this.origin}`;
    this.nullTransport = this.config.getBoolean("serializer.null.transport", false);
    this.decodeOptions = { nulls: this.nullTransport, budget: configuredBudget(this.config) };
    this.#executor = new Executor({
      origin: this.origin,
      telemetry: this.#telemetry,
      stackLines: Math.max(3, this.config.getNumber("stack.trace.transport.size", 10)),
      deliver: (reply) => this.deliver(reply),
    });
    this.#queueLimit = Math.max(1, this.config.getNumber("route.queue.limit", 10_000));
    this.#retryRoutes = new Set(this.config.getList("request.retry.routes"));
    this.#telemetry.observe(() => this.metrics());
    loadMulticast(this);
    this.#routing = routeConfig(this.config);
    for (const [from, to] of this.#routing.substitutions) {
      log.info("Route substitution: {from} -> {to}", { from, to });
    }
    for (const [route, t] of this.#routing.httpTargets) {
      log.info("Event over HTTP: {route} -> {url}", { route, url: t.url });
    }
    for (const key of this.config.keys()) {
      const layer = this.config.layer(key);
      const meant = layer === "file" || layer === "flag" ? misspeltKey(key) : undefined;
      if (meant === undefined) continue;
      log.warn("Unknown setting {key} ({where}), not used: did you mean {meant}?", {
        key,
        where: layer === "flag" ? `-D${key}` : this.config.sources.join(", "),
        meant,
      });
    }
    made++;
  }

  /**
   * The process-wide platform, created on first use from the process's arguments, environment
   * and working folder (as the Java original's `Platform.getInstance()`). A {@link PostOffice}
   * made without a platform uses it; a platform made with `new Platform()` is never it, so pass
   * that one to its post office.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform } from "@minimesh/core";
   * assert(Platform.getInstance() === Platform.getInstance());
   * ```
   */
  static getInstance(): Platform {
    if (defaultPlatform !== undefined) return defaultPlatform;
    const others = made;
    defaultPlatform = new Platform();
    if (others > 0) {
      log.warn(
        "Made the process's default platform while {n} other platform(s) exist: a PostOffice " +
          "made without a platform uses the default, not those (pass yours: new PostOffice({}, " +
          "platform))",
        { n: others },
      );
    }
    return defaultPlatform;
  }

  /**
   * Registers a public function: it will be advertised to the mesh. Registering a route again
   * replaces the old function (with a warning).
   *
   * @param route A valid route name, such as `hello.world`.
   * @param fn The function.
   * @param options How many events it may run at once (1 to 10,000; later events wait), or
   * {@link RegisterOptions} (`instances`, `interceptor`).
   * @throws {InvalidRouteError} For a bad route name.
   * @throws {RangeError} For a bad instance count.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("hello.world", (_h, body) => body, 5);
   * // Typed: the body and the result of the function.
   * platform.register<{ n: number }, number>("math.double", (_h, { n }) => n * 2);
   * assert(platform.hasRoute("hello.world") && platform.hasRoute("math.double"));
   * ```
   */
  register<I = unknown, O = unknown>(
    route: string,
    fn: LambdaFunction<I, NoInfer<O>>,
    options: number | RegisterOptions = 1,
  ): void {
    this.#add(route, fn as LambdaFunction, options, false);
  }

  /**
   * Registers a private function: callable in this instance only, never advertised.
   *
   * @throws {InvalidRouteError} For a bad route name.
   * @throws {RangeError} For a bad instance count.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.registerPrivate("my.secret", () => 42);
   * assert(platform.isPrivate("my.secret"));
   * ```
   */
  registerPrivate<I = unknown, O = unknown>(
    route: string,
    fn: LambdaFunction<I, NoInfer<O>>,
    options: number | RegisterOptions = 1,
  ): void {
    this.#add(route, fn as LambdaFunction, options, true);
  }

  #add(
    route: string,
    fn: LambdaFunction,
    options: number | RegisterOptions,
    isPrivate: boolean,
  ): void {
    const instances = typeof options === "number" ? options : options.instances ?? 1;
    validateRoute(route);
    if (route === TEMPORARY_INBOX) throw new AppError(400, `Route ${route} is reserved`);
    if (typeof fn !== "function") {
      throw new TypeError(`The function for ${route} must be a function, got ${typeof fn}`);
    }
    if (!Number.isInteger(instances) || instances < 1 || instances > MAX_INSTANCES) {
      throw new RangeError(
        `Instances for ${route} must be an integer from 1 to ${MAX_INSTANCES}, got ${instances}`,
      );
    }
    if (typeof options === "object" && options.interceptor) fn = interceptor(fn);
    if (this.#routes.has(route)) {
      log.warn("{route} reloaded", { route });
      this.release(route);
    }
    this.#routes.set(
      route,
      // The worker is chosen once: the untraced one stays free of any telemetry check.
      new ServiceQueue(
        route,
        fn,
        instances,
        isPrivate,
        this.#executor.worker(),
        this.#queueLimit,
      ),
    );
    if (!isPrivate) this.#mesh?.routeChanged(route, true);
    log.info("{route} registered as {kind} with {instances} instance(s)", {
      route,
      kind: isPrivate ? "private" : "public",
      instances,
    });
  }

  /**
   * Removes a route. Events still waiting for it get an error reply (503) when they are
   * requests, and a warning in the log otherwise; running events finish.
   *
   * @returns Whether the route was registered.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("a.b", () => 1);
   * assert(platform.release("a.b") && !platform.hasRoute("a.b"));
   * ```
   */
  release(route: string): boolean {
    const q = this.#routes.get(route);
    if (q === undefined) return false;
    this.#routes.delete(route);
    if (!q.isPrivate) this.#mesh?.routeChanged(route, false);
    const left = q.release();
    for (const event of left) {
      const released = new AppError(503, `Route ${route} was released`);
      this.#executor.reply(q.route, event, -1, undefined, released);
    }
    log.info("{route} released", { route });
    return true;
  }

  /** Requests made through this platform that still wait for their reply. */
  get pendingRequests(): number {
    return this.#inbox.pending;
  }

  /**
   * Whether a request to `route` whose serving instance leaves the mesh before replying is sent
   * once more to another instance, when the request does not say (`request.retry.routes`).
   */
  retriesByDefault(route: string): boolean {
    return this.#retryRoutes.has(route);
  }

  /**
   * Adds a participant to the graceful stop; returns a function that removes it.
   *
   * @example
   * ```ts
   * import { Platform } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.onStop({ name: "cache", stop: () => Promise.resolve() });
   * await platform.stop();
   * ```
   */
  onStop(participant: StopParticipant): () => void {
    this.#participants.push(participant);
    return () => {
      const i = this.#participants.indexOf(participant);
      if (i >= 0) this.#participants.splice(i, 1);
    };
  }

  /** Whether {@link Platform.stop} has begun. */
  get stopping(): boolean {
    return this.#stopped !== undefined;
  }

  /** Work in progress: running and waiting events, requests waiting for replies, participants' work. */
  get pendingWork(): number {
    let n = this.#inbox.pending;
    for (const q of this.#routes.values()) n += q.busy + q.backlog;
    for (const p of this.#participants) n += p.pending?.() ?? 0;
    return n;
  }

  /**
   * Stops gracefully, in this order (docs/reliability.md): every participant stops taking new
   * work (the HTTP server stops accepting, the mesh connector tells peers this instance is
   * draining); then the work in progress finishes, for up to the grace period; then the
   * participants stop, last added first (the connector leaves the mesh). Calling it again
   * returns the same promise.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform, PostOffice } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.register("slow.echo", async (_h, body) => {
   *   await new Promise((r) => setTimeout(r, 50));
   *   return body;
   * });
   * const reply = new PostOffice({}, platform).request({ to: "slow.echo", body: 1 }, 1000);
   * await platform.stop({ gracePeriod: 1000 }); // waits for the request in progress
   * assert.equal((await reply).body, 1);
   * ```
   */
  stop(options: StopOptions = {}): Promise<void> {
    return this.#stopped ??= this.#stop(
      options.gracePeriod ?? Math.max(0, this.config.getNumber("drain.grace.period", 10)) * 1000,
    );
  }

  /** Stops the platform with the default grace period (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(grace: number): Promise<void> {
    await stopInOrder([...this.#participants], grace, () => this.pendingWork);
    // In memory only, as in the Java original: what is still scheduled is not sent, and says so.
    const dropped = this.#future.clear();
    if (dropped > 0) {
      log.warn("{n} event(s) scheduled for later not sent: stopping", { n: dropped });
    }
    log.info("Stopped");
  }

  static {
    inboxOf = (p) => p.#inbox;
    telemetryOf = (p) => p.#telemetry;
    futureOf = (p) => p.#future;
    routingOf = (p) => p.#routing;
  }

  /**
   * The events scheduled with {@link PostOffice.sendLater} that wait, soonest first (those to
   * route `to` only, when given). The Java original's `getFutureEvents` / `getAllFutureEvents`.
   */
  futureEvents(to?: string): FutureEvent[] {
    return this.#future.list(to);
  }

  /**
   * Cancels an event scheduled with {@link PostOffice.sendLater}.
   *
   * @returns False when no such event waits (it was sent, cancelled, or never scheduled).
   */
  cancelFutureEvent(id: string): boolean {
    return this.#future.cancel(id);
  }

  /**
   * Makes a private function public: advertised to the mesh from now on (Java's `makePublic`).
   *
   * @throws {RouteNotFoundError} When the route is not registered here.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { Platform } from "@minimesh/core";
   * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
   * platform.registerPrivate("a.b", () => 1);
   * platform.makePublic("a.b");
   * assert(!platform.isPrivate("a.b"));
   * ```
   */
  makePublic(route: string): void {
    const q = this.#routes.get(route);
    if (q === undefined) throw new RouteNotFoundError(route);
    if (!q.isPrivate) return;
    q.isPrivate = false;
    this.#mesh?.routeChanged(route, true);
    log.info("{route} is now public", { route });
  }

  /**
   * The route substitutions in force (`application.feature.route.substitution`), original →
   * replacement: events to the original go to the replacement.
   */
  routeSubstitutions(): Record<string, string> {
    return Object.fromEntries(this.#routing.substitutions);
  }

  /** Whether `route` is registered in this instance. */
  hasRoute(route: string): boolean {
    return this.#routes.has(route);
  }

  /**
   * Whether a registered `route` is private.
   *
   * @throws {RouteNotFoundError} When it is not registered here.
   */
  isPrivate(route: string): boolean {
    const q = this.#routes.get(route);
    if (q === undefined) throw new RouteNotFoundError(route);
    return q.isPrivate;
  }

  /** The registered routes, sorted by name. */
  routes(): RouteInfo[] {
    return [...this.#routes.values()]
      .map((q) => ({
        route: q.route,
        instances: q.instances,
        isPrivate: q.isPrivate,
        busy: q.busy,
        backlog: q.backlog,
        events: q.handled,
        errors: q.failed,
      }))
      .sort((a, b) => a.route < b.route ? -1 : 1);
  }

  /**
   * Adds metric families to {@link Platform.metrics} (the connector's and the monitor's).
   *
   * @returns A function that removes the source.
   */
  addMetricSource(source: MetricSource): () => void {
    this.#metricSources.add(source);
    this.#telemetry.refresh();
    return () => void this.#metricSources.delete(source);
  }

  /**
   * The metrics of this instance, for `/metrics`: per route (events, errors, latency of timed
   * events, queue length, busy workers), the requests it made (per route and status, see
   * `caller_stats.ts`), the process's (`process_metrics.ts`), then those of the sources added.
   */
  metrics(): MetricFamily[] {
    const families = routeMetrics(this.#routes.values());
    families.push(...this.#inbox.calls.metrics(), ...processMetrics(this.startTime));
    for (const source of this.#metricSources) families.push(...source());
    return families;
  }

  /**
   * Hands an envelope to the route in its `to` field (a reply addressed to this instance's
   * inbox completes its request). Delivery is asynchronous: the function runs after this
   * returns. Most code uses {@link PostOffice} instead, which also sets trace and reply fields.
   *
   * @throws {RouteNotFoundError} When no function here serves the route.
   * @throws {InvalidRouteError} When the route name itself is malformed.
   */
  deliver(event: EventEnvelope): void | Promise<void> {
    const to = event.to;
    if (to === this.inboxAddress || to === TEMPORARY_INBOX) {
      if (!this.#inbox.complete(event)) {
        log.debug("Reply {id} arrived after its request ended", { id: event.correlationId });
      }
      return;
    }
    const q = this.#queueOf(to);
    if (q !== undefined) return q.enqueue(event);
    if (to !== undefined && this.#mesh?.reaches(to)) return this.#mesh.send(event);
    throw notFound(to);
  }

  /**
   * Hands an event to this instance's own function for its route, never to the mesh (used
   * for events that arrive from the mesh).
   *
   * @throws {RouteNotFoundError} When no function here serves the route.
   */
  deliverLocal(event: EventEnvelope): void {
    const to = event.to;
    if (to === this.inboxAddress || to === TEMPORARY_INBOX) {
      this.#inbox.complete(event);
      return;
    }
    const q = this.#queueOf(to);
    if (q === undefined) throw notFound(to);
    q.enqueue(event);
  }

  /** The mesh this platform sends through, if it joined one. */
  get mesh(): MeshTransport | undefined {
    return this.#mesh;
  }

  /**
   * Joins (or, with undefined, leaves) a mesh: events to routes that no local function
   * serves then go through it. Called by a cloud connector.
   */
  attachMesh(mesh: MeshTransport | undefined): void {
    this.#mesh = mesh;
    this.#executor.timed = mesh !== undefined || this.#telemetry.metering;
  }

  /**
   * Whether {@link Platform.deliver} would find a destination for `to`: a local function
   * (a route, or `route@origin` with this instance's origin) or, with a mesh, a peer.
   */
  hasDestination(to: string): boolean {
    return this.#queueOf(to) !== undefined || this.#mesh?.reaches(to) === true;
  }

  #queueOf(to: string | undefined): ServiceQueue | undefined {
    if (!to) return undefined;
    const q = this.#routes.get(to);
    if (q !== undefined) return q;
    const { route, origin } = splitAddress(to);
    return origin === undefined || origin === this.origin ? this.#routes.get(route) : undefined;
  }
}
