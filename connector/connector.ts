/**
 * The Kafka cloud connector: with `cloud.connector=kafka`, a platform joins the mesh. It keeps a
 * connection to the presence monitors ({@link PresenceClient}), which lease it one partition;
 * it reads that partition ({@link Delivery}) and its closed user group's partition of
 * `service.monitor` ({@link Peers}), and it is the platform's {@link MeshTransport}: events for
 * routes served elsewhere leave through it.
 *
 * @module
 */
import { connectorMetrics } from "./metrics.ts";
import { RouteNotFoundError } from "../bus/errors.ts";
import type { EventEnvelope } from "../bus/envelope.ts";
import { logger } from "../bus/_log.ts";
import { splitAddress } from "../bus/route.ts";
import type { MeshTransport } from "../bus/mesh.ts";
import { inboxOf, TEMPORARY_INBOX } from "../bus/platform.ts";
import type { Platform } from "../bus/platform.ts";
import { AppError, ConfigError } from "../bus/errors.ts";
import type { KafkaClient, PartitionConsumer, TrafficCounters } from "../kafka/client.ts";
import { kafkaClient } from "../kafka/factory.ts";
import type { OAuthBearerProvider } from "../kafka/properties.ts";
import { splitVirtualTopic } from "../kafka/records.ts";
import { describeKafka } from "../kafka/properties.ts";
import { PROBLEM_SUMMARY, untilKafkaAccepts } from "../kafka/startup.ts";
import { MAX_BLOCK } from "./blocks.ts";
import { meshTokens } from "../protocol/credentials.ts";
import { identitySecret } from "./identity.ts";
import { webSocketTrusting } from "../runtime/tls_client.ts";
import { Delivery } from "./delivery.ts";
import type { ConnectorStats } from "./delivery.ts";
import { HEALTH_ROUTE, healthCheck } from "./health.ts";
import { LifeCycle } from "./life_cycle.ts";
import type { LifeCycleEvent, LifeCycleEventsOptions } from "./life_cycle.ts";
import { Peers } from "./peers.ts";
import { reporter } from "../protocol/report.ts";
import { SERVICE_QUERY, serviceQuery } from "./service_query.ts";
import { PresenceClient } from "./presence_client.ts";
import type { WebSocketFactory } from "./presence_client.ts";
import { RoutingTable } from "./routing_table.ts";
import { Balancer } from "./_balancer.ts";
import { Stalls } from "./stalls.ts";
import { connectorSettings } from "./settings.ts";
import type { ConnectorSettings } from "./settings.ts";
import { failSoon } from "../bus/_fail_soon.ts";

const log = logger("connector");
const PEER_WAIT_MS = 5000;
/**
 * An instance given another partition reads its old one this long more: peers that have not yet
 * heard of the move send there (the monitors hold it for the instance for a minute).
 */
const MOVE_READ_MS = 30_000;
/** The longest the group's reader waits after records came (see ConsumeOptions.lingerMs). */
const GROUP_LINGER_MAX_MS = 150;
/**
 * How long a fetch of this instance's idle partition (after a fetch that brought nothing) waits at
 * the broker for a request or reply (no later for either: the broker answers when one comes).
 * Idle, it is a fetch per wait at both ends: at 500 ms, 300 idle members made the brokers spend a
 * third of a core.
 */
const OWN_FETCH_WAIT_MS = 3000;
/** The group's idle fetch while the instance has traffic (see {@link QUIET_AFTER_MS}). */
const GROUP_FETCH_WAIT_MS = 500;
/**
 * An instance that sent and received nothing over Kafka this long is quiet: both its partitions
 * are then fetched once per QUIET_FETCH_WAIT_MS (an idle member's CPU is mostly its wake-ups,
 * bench/idle_bench.ts). Its first record in or out ends the quiet at each reader's next fetch
 * (a record also ends a fetch's wait at once). Quiet, a broker gone silent is noticed within
 * that wait and `kafka.silence.ms`, instead of 0.5 s and it; nothing of the instance waits on it.
 */
const QUIET_AFTER_MS = 10_000;
const QUIET_FETCH_WAIT_MS = 10_000;
/** A draining instance waits this long without a record on its partition before it leaves. */
const DRAIN_QUIET_MS = 250;

/** Options of a {@link KafkaConnector}. */
export interface KafkaConnectorOptions {
  /** The WebSocket constructor for the presence connection (the runtime's by default). */
  webSocket?: WebSocketFactory;
  /**
   * The Kafka client (by default a `KafkaLink` configured by `cloud.client.properties`
   * and `bootstrap.servers`).
   */
  kafka?: KafkaClient;
  /**
   * Supplies OAUTHBEARER tokens when `sasl.mechanism=OAUTHBEARER`: called whenever the
   * client authenticates; the application fetches the token from its identity provider.
   */
  oauthBearer?: OAuthBearerProvider;
}

/**
 * The mesh transport over Kafka. Usually created by {@link connectToCloud}; `await using`
 * stops it at the end of a scope.
 *
 * @example
 * ```ts
 * import { Platform, PostOffice } from "@minimesh/core";
 * import { KafkaConnector } from "@minimesh/core/connector";
 * // Needs a broker and a monitor: the doc test type-checks this function without calling it.
 * export async function callThroughTheMesh(): Promise<unknown> {
 *   const platform = new Platform({ args: ["-Dcloud.connector=kafka"] });
 *   await using connector = new KafkaConnector(platform); // stopped at the end of the scope
 *   connector.start();
 *   await connector.joined;
 *   const po = new PostOffice({}, platform);
 *   return (await po.request({ to: "hello.world" }, { timeout: 5000 })).body;
 * }
 * ```
 */
export class KafkaConnector implements MeshTransport, AsyncDisposable {
  /** The platform that joined the mesh. */
  readonly platform: Platform;
  /** Its settings, from the platform's configuration. */
  readonly settings: ConnectorSettings;
  /** The routing table. */
  readonly table: RoutingTable = new RoutingTable();
  readonly #kafka: KafkaClient;
  readonly #client: PresenceClient;
  readonly #lifeCycle: LifeCycle;
  readonly #peers: Peers;
  readonly #stalls: Stalls;
  readonly #delivery: Delivery;
  /** Which instance of a route each event goes to. */
  readonly #balancer: Balancer;
  readonly #offMetrics: () => void;
  /** Its own partition's consumer first, then its group's. */
  #consumers: PartitionConsumer[] = [];
  /** Consumers of partitions it moved away from, read a while more (see {@link MOVE_READ_MS}). */
  #retiring = new Map<PartitionConsumer, ReturnType<typeof setTimeout>>();
  /** The join or leave in progress; the next one starts after it. */
  #joining: Promise<void> = Promise.resolve();
  #topic: string | undefined;
  /** While the monitor connection is down after a join: the end of the grace period. */
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #offStop: (() => void) | undefined;
  #draining = false;
  /** Set by start: aborted by stop, which ends a check of Kafka still going on. */
  #checking: AbortController | undefined;
  #kafkaProblem: string | undefined;
  /** When the last record arrived on this instance's own partition (ms). */
  #lastRecordAt = 0;
  /** The mesh records counted when a reader last asked (see #quiet), and when that count changed. */
  #trafficSeen = -1;
  #trafficAt = 0;
  readonly #firstJoin = Promise.withResolvers<void>();
  /** The current lease's join was announced and answered (see #announce). */
  #announced = false;

  /**
   * Creates the connector from the platform's configuration; {@link KafkaConnector.start}
   * connects.
   *
   * @throws {ConfigError} For a bad `closed.user.group` or presence URL.
   */
  constructor(platform: Platform, options: KafkaConnectorOptions = {}) {
    this.platform = platform;
    const s = this.settings = connectorSettings(platform.config);
    this.#kafka = options.kafka ??
      kafkaClient(s.kafka, `app-${platform.origin.slice(8, 16)}`, options.oauthBearer);
    this.#lifeCycle = new LifeCycle();
    const seen = { joins: 0, leaves: 0 };
    this.#lifeCycle.on((e) => {
      if (e.type === "join") seen.joins++;
      else if (e.type === "leave") seen.leaves++;
    });
    const inbox = inboxOf(platform);
    this.#balancer = new Balancer({
      waiting: (origin) => inbox.waiting(origin),
      usualTime: (route) => inbox.calls.usualTime(route),
    });
    this.#delivery = new Delivery(platform, this.#kafka, {
      maxSets: s.blockMaxPendingSets,
      maxPendingBytes: s.blockMaxPendingBytes,
    }, s.clockSkewMs);
    this.#offMetrics = platform.addMetricSource(() =>
      connectorMetrics({
        stats: this.#delivery.stats,
        traffic: this.#delivery.traffic,
        peers: this.table.peers().length,
        leased: this.#topic !== undefined,
        kafkaUp: this.#kafka.available,
        joins: seen.joins,
        leaves: seen.leaves,
        lag: this.#consumers.flatMap((c) =>
          c.lag === undefined ? [] : [{ topic: c.topic, partition: c.partition, lag: c.lag }]
        ),
      })
    );
    this.#peers = new Peers({
      platform,
      kafka: this.#kafka,
      table: this.table,
      lifeCycle: this.#lifeCycle,
      monitorTopic: s.monitorTopic,
      group: s.group,
      personality: `${platform.name}, ${s.personality}`,
      topic: () => this.#topic,
      peerState: (origin) => this.#client?.peerState(origin) ?? Promise.resolve("unknown"),
    });
    this.#stalls = new Stalls({
      table: this.table,
      send: (records) => this.#kafka.send(records),
      retryElsewhere: (origin, why) => this.#peers.retryElsewhere(origin, why),
      retryOnReturn: (origin) => this.#peers.retryOnReturn(origin),
    });
    try {
      this.#client = new PresenceClient({
        urls: s.presenceUrls,
        origin: platform.origin,
        info: {
          name: platform.name,
          version: platform.version,
          group: String(s.group),
          type: s.personality,
        },
        keepAliveMs: s.keepAliveMs,
        lease: () => this.#topic,
        onReady: (topic, _url, signal, peers) => this.#join(topic, signal, peers),
        onLost: (code, reason) => this.#detach(`${code} ${reason || "no reason"}`),
        onKeepAlive: () => this.#peers.keepAlive(),
        webSocket: options.webSocket ??
          (s.presenceCa !== undefined ? webSocketTrusting(s.presenceCa) : undefined),
        token: meshTokens(platform.config)[0],
        identity: identitySecret(platform.config, platform.appId),
        reports: reporter(
          platform,
          () => this.#kafka.available,
          this.#kafka.onAvailability?.bind(this.#kafka),
        ),
      });
    } catch (e) {
      throw new ConfigError("presence.url", s.presenceUrls.join(","), (e as Error).message);
    }
  }

  /** Skipped-record counters. */
  get stats(): Readonly<ConnectorStats> {
    return this.#delivery.stats;
  }

  /** Kafka traffic counters of this instance (produce requests, records, fetched batches). */
  get traffic(): Readonly<TrafficCounters> {
    return this.#kafka.counters;
  }

  /** Whether this instance is in the mesh now. */
  get connected(): boolean {
    return this.#topic !== undefined;
  }

  /** The leased virtual topic while connected. */
  get topic(): string | undefined {
    return this.#topic;
  }

  /**
   * Resolves the first time this instance has joined the mesh, once it has heard the routes of
   * the group's other instances (as many as its monitor said hold a lease, or, under a Java
   * monitor, until their answers stop coming; 3 s at most): a request made then reaches a remote
   * route that exists.
   */
  get joined(): Promise<void> {
    return this.#firstJoin.promise;
  }

  /**
   * Starts: registers the health route, waits until Kafka accepts this instance (see
   * {@link KafkaConnector.kafkaProblem}), then connects to the presence monitors.
   */
  start(): void {
    const s = this.settings;
    if (!this.platform.hasRoute(HEALTH_ROUTE)) {
      this.platform.registerPrivate(
        HEALTH_ROUTE,
        healthCheck(this.#kafka, () => this.#topic, {
          problem: () => this.#kafkaProblem,
          topics: s.kafka.topics,
        }),
        2,
      );
    }
    if (!this.platform.hasRoute(SERVICE_QUERY)) {
      this.platform.registerPrivate(
        SERVICE_QUERY,
        serviceQuery(this.platform, s.personality, () => this.describe()),
        10,
      );
    }
    log.info("Kafka: {kafka}", { kafka: describeKafka(s.kafka) });
    log.info("Automatic segmentation when event payload exceeds {max}", {
      max: MAX_BLOCK.toLocaleString("en-US"),
    });
    this.#offStop ??= this.platform.onStop({
      name: "mesh connector",
      drain: () => this.#drain(),
      pending: () => this.#drainPending(),
      stop: () => this.stop(),
    });
    if (this.#checking !== undefined && !this.#checking.signal.aborted) return;
    // Kafka first: an instance whose credentials or TLS settings Kafka refuses must not take a
    // lease it cannot read; it says why (in the log and on /health) and tries again, backing off.
    const checking = this.#checking = new AbortController();
    const k = s.kafka;
    untilKafkaAccepts(this.#kafka, k, {
      need: k.topics === "pre-allocated" ? [[s.monitorTopic, s.maxGroups + 1]] : [],
      signal: checking.signal,
      onProblem: (problem, retryInMs) => {
        this.#kafkaProblem = PROBLEM_SUMMARY[problem.kind];
        log.error("{problem}; trying again in {s} s", {
          problem: problem.text,
          s: retryInMs / 1000,
        });
      },
    }).then(() => {
      if (checking.signal.aborted) return; // stopped while the last check was answered
      if (this.#kafkaProblem !== undefined) log.info("Kafka accepts this instance now");
      this.#kafkaProblem = undefined;
      this.#client.start();
    }, () => {});
  }

  /**
   * Why Kafka does not accept this instance yet, in short (shown by `/health`; the log has the
   * details), or undefined.
   */
  get kafkaProblem(): string | undefined {
    return this.#kafkaProblem;
  }

  // Platform.stop, first step: peers are told to send new requests elsewhere. This instance
  // goes on reading its partition, so requests already on their way are served.
  async #drain(): Promise<void> {
    if (!this.connected || this.#draining) return;
    this.#draining = true;
    this.#lastRecordAt = Date.now(); // the quiet period counts from here
    log.info("Draining: peers send new requests to other instances");
    await this.#peers.announceDrain().catch((e) =>
      log.warn("Cannot announce the drain: {message}", { message: (e as Error).message })
    );
  }

  // While draining: busy until the drain came back on the group's partition (the peers have it
  // in their queue) and no record arrived for a moment (what they sent before is here).
  #drainPending(): number {
    if (!this.#draining || !this.connected) return 0;
    return (this.#peers.drainSeen ? 0 : 1) +
      (Date.now() - this.#lastRecordAt < DRAIN_QUIET_MS ? 1 : 0);
  }

  /**
   * Leaves the mesh: closes the monitor connection (the monitor tells the peers at once, as in
   * the Java original) and stops reading.
   */
  async stop(): Promise<void> {
    this.#checking?.abort();
    this.#offStop?.();
    this.#offStop = undefined;
    this.#delivery.close();
    clearTimeout(this.#graceTimer);
    this.#peers.stop();
    this.#stalls.close();
    this.#client.stop();
    await this.#leave("stopping");
    this.#lifeCycle.close();
    await this.#kafka.close();
    this.#offMetrics();
  }

  /** Stops the connector (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Life-cycle events from now on (`join` and `leave` of peers, `connected` and `disconnected`
   * of this instance), as an async iterable, until `signal` aborts, the loop breaks or the
   * connector stops. (The Java original's `subscribe_life_cycle(route)` is a loop that sends
   * each event to the route.)
   *
   * @example
   * ```ts
   * import type { KafkaConnector } from "@minimesh/core/connector";
   * export async function logJoins(connector: KafkaConnector): Promise<void> {
   *   for await (const e of connector.lifeCycle({ signal: AbortSignal.timeout(60_000) })) {
   *     if (e.type === "join") console.log(`${e.name} joined`);
   *   }
   * }
   * ```
   */
  lifeCycle(options: LifeCycleEventsOptions = {}): AsyncIterableIterator<LifeCycleEvent> {
    return this.#lifeCycle.events(options);
  }

  // ---- MeshTransport ----

  /**
   * Whether a peer serves `to` (a route, or `route@origin` of a known peer). A reply to a
   * peer's inbox always qualifies: the peer exists, even if its routes have not arrived yet.
   */
  reaches(to: string): boolean {
    if (!this.connected) return false;
    const { route, origin } = splitAddress(to);
    if (origin !== undefined) {
      return origin !== this.platform.origin && (this.knows(origin) || route === TEMPORARY_INBOX);
    }
    return this.table.origins(route).some((o) => o !== this.platform.origin);
  }

  /** Whether `origin` is a known peer. */
  knows(origin: string): boolean {
    return this.table.peer(origin) !== undefined;
  }

  /** The peers that serve `route` (this instance not included). */
  origins(route: string): string[] {
    return this.table.origins(route).filter((o) => o !== this.platform.origin);
  }

  /** Sends to one instance serving the route (chosen by the Balancer) or to `route@origin`. */
  send(event: EventEnvelope): Promise<void> {
    const to = event.to!;
    const { route, origin } = splitAddress(to);
    // Our own public routes are in the table too; a local route never gets here, so skip us.
    const dest = origin ?? this.#balancer.pick(
      route,
      this.table.takers(route),
      this.platform.origin,
      event.replyTo === this.platform.inboxAddress,
    );
    if (dest === undefined || dest === this.platform.origin) {
      return failSoon(new RouteNotFoundError(to));
    }
    if (!this.knows(dest)) {
      // A reply to a caller whose join is still on its way: wait for it a little.
      if (route !== TEMPORARY_INBOX) return failSoon(new RouteNotFoundError(to));
      return this.#awaitPeer(dest, PEER_WAIT_MS).then(() => this.#sendTo(dest, event));
    }
    return this.#sendTo(dest, event);
  }

  #awaitPeer(origin: string, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new AppError(503, `Peer ${origin} is not known after ${ms} ms`));
      }, ms);
      const off = this.#lifeCycle.on((e) => {
        if (e.type === "join" && e.origin === origin) {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  /**
   * Sends one copy to every instance serving the route, this one included (over Kafka). The
   * copies carry broadcast level 3, "deliver here only", as the Java original's do: a Java
   * receiver would broadcast a level-1 event again.
   */
  broadcast(event: EventEnvelope): Promise<void> {
    const { route } = splitAddress(event.to!);
    const origins = this.table.origins(route);
    if (origins.length === 0) return failSoon(new RouteNotFoundError(route));
    event.to = route;
    event.tags.broadcast = "3";
    return Promise.all(origins.map((o) => this.#sendTo(o, event))).then(() => {});
  }

  /** Tells the group about a public route registered or released here. */
  routeChanged(route: string, added: boolean): void {
    if (this.connected) this.#peers.routeChanged(route, added);
  }

  /** The routing table as `/info/routes` shows it (the Java original's `network` section). */
  describe(): Record<string, unknown> {
    const routes: Record<string, string[]> = {};
    for (const [route, byOrigin] of [...this.table.routes()].sort(([a], [b]) => a < b ? -1 : 1)) {
      // As the Java original lists them: the personality in lower case, then the origin.
      routes[route] = [...byOrigin].map(([origin, p]) => `${p.toLowerCase()}, ${origin}`).sort();
    }
    return {
      routes,
      nodes: this.table.peers().map((p) =>
        `${p.topic}, ${new Date(p.lastSeen).toISOString()}, ${p.origin}`
      ),
      name: `${this.platform.name}, v${this.platform.version}`,
      origin: this.platform.origin,
      group: this.settings.group,
      topic: this.#topic ?? null,
      connected: this.connected,
    };
  }

  #sendTo(origin: string, event: EventEnvelope): Promise<void> {
    // While the broker is away, fail at once rather than after the producer's retries.
    if (!this.#kafka.available) return failSoon(new AppError(503, "Mesh unavailable"));
    const topic = origin === this.platform.origin ? this.#topic : this.table.peer(origin)?.topic;
    if (!topic) return failSoon(new AppError(503, `Peer ${origin} has no topic yet`));
    const sent = this.#delivery.send(origin, topic, event);
    if (origin !== this.platform.origin) this.#stalls.watch(origin, sent);
    return sent;
  }

  // ---- joining and leaving ----

  // One join at a time, and never two sets of consumers: a join waits for the one before it
  // and stops whatever that one left; a join whose monitor connection closes (`signal`) before it
  // is done undoes itself. A connection that closes after the join does not end the membership:
  // see #detach.
  #join(topic: string, signal: AbortSignal, peers?: number): Promise<void> {
    const joined = this.#joining.then(() => this.#joinNow(topic, signal, peers));
    this.#joining = joined.catch(() => {});
    return joined;
  }

  async #joinNow(topic: string, signal: AbortSignal, peers?: number): Promise<void> {
    const [physical, partition] = splitVirtualTopic(topic);
    if (!physical || !Number.isInteger(partition)) throw new Error(`Invalid topic ${topic}`);
    if (topic === this.#topic && this.#consumers.length > 0) {
      return this.#rejoin(topic, signal, peers);
    }
    if (this.#topic !== undefined && this.#consumers.length > 0) {
      return this.#move(topic, physical, partition, signal);
    }
    await this.#stopConsumers();
    signal.throwIfAborted();
    const t0 = performance.now();
    const s = this.settings;
    // The join's first write goes to the group's partition: connect to its leader meanwhile.
    this.#kafka.prepareSend?.(s.monitorTopic, s.group);
    const own = this.#consumeOwn(physical, partition);
    const group = this.#kafka.consumePartition(
      s.monitorTopic,
      s.group,
      (r) => this.#peers.onRecord(r),
      // Every member reads it: in a join storm, fewer and fuller fetches (0.5 ms a peer, up to
      // 150 ms; a group of 10 waits 5 ms).
      {
        lingerMs: () => Math.min(GROUP_LINGER_MAX_MS, this.table.peerCount / 2),
        maxWaitMs: () => this.#quiet() ? QUIET_FETCH_WAIT_MS : GROUP_FETCH_WAIT_MS,
      },
    );
    this.#consumers = [own, group];
    log.info("Subscribed {topic}.{partition}", { topic: physical, partition });
    try {
      await untilAborted(Promise.all([own.ready, group.ready]), signal);
    } catch (e) {
      await this.#stopConsumers();
      throw e;
    }
    log.info("{topic}, partition {partition} ready", { topic: physical, partition });
    this.#topic = topic;
    this.#attached();
    const me = this.platform.origin;
    const personality = `${this.platform.name}, ${s.personality}`;
    for (const r of this.platform.routes()) {
      if (!r.isPrivate) this.table.addRoute(r.route, me, personality);
    }
    this.platform.attachMesh(this);
    await this.#announce(signal, peers, performance.now() - t0);
  }

  // The join's last step, which a join that failed in it (its announcement not written: Kafka
  // away) leaves to the next join through the same lease. Logs where the join's time went.
  async #announce(signal: AbortSignal, peers?: number, readMs?: number): Promise<void> {
    const t0 = performance.now();
    await this.#peers.announceJoin();
    this.#peers.keepAlive();
    const t1 = performance.now();
    // Joined means the routing table is filled: the peers answer the join with their routes.
    await this.#peers.heard(peers, signal);
    log.info(
      "Joined: partitions read in {read} ms, the join written in {written} ms, peers' routes " +
        "heard in {heard} ms",
      {
        read: readMs === undefined ? "(before)" : Math.round(readMs),
        written: Math.round(t1 - t0),
        heard: Math.round(performance.now() - t1),
      },
    );
    this.#announced = true;
    this.#lifeCycle.notify({ type: "connected", origin: this.platform.origin });
    this.#firstJoin.resolve();
  }

  // While the instance has traffic, its group's reader fetches every 500 ms when idle: it is what
  // tells the client soon that the whole cluster went silent, and finds a connection to a broker
  // cut off soon (its fetch overdue while others are answered); with 3 s there, the multi-host
  // fault suite's broker-host cut lost requests that Kafka does not explain. Quiet (no record in
  // or out for QUIET_AFTER_MS), no request of the instance waits on Kafka.
  #quiet(): boolean {
    const t = this.#delivery.traffic;
    const seen = t.recordsIn + t.recordsOut;
    const now = Date.now();
    if (seen !== this.#trafficSeen) [this.#trafficSeen, this.#trafficAt] = [seen, now];
    return now - this.#trafficAt >= QUIET_AFTER_MS;
  }

  // An idle instance's partition is fetched once per OWN_FETCH_WAIT_MS (quiet: see #quiet).
  #consumeOwn(physical: string, partition: number): PartitionConsumer {
    return this.#kafka.consumePartition(physical, partition, (r) => {
      if (this.#draining) this.#lastRecordAt = Date.now(); // a clock read only while draining
      return this.#delivery.onRecord(r);
    }, { maxWaitMs: () => this.#quiet() ? QUIET_FETCH_WAIT_MS : OWN_FETCH_WAIT_MS });
  }

  // Back with another lease while in the mesh: a Java monitor gives each application it takes
  // over a new partition. The instance moves without leaving: it reads the new partition, tells
  // its group (peers send there from then on), and reads the old one a while more, where peers
  // that have not heard yet send requests and replies. Its peers, routing table and requests in
  // flight stay.
  async #move(topic: string, physical: string, partition: number, signal: AbortSignal) {
    const own = this.#consumeOwn(physical, partition);
    try {
      await untilAborted(own.ready, signal);
    } catch (e) {
      await own.stop();
      throw e;
    }
    const [old, ...group] = this.#consumers;
    this.#consumers = [own, ...group];
    this.#retiring.set(
      old,
      setTimeout(() => {
        this.#retiring.delete(old);
        old.stop().catch(() => {});
      }, MOVE_READ_MS),
    );
    log.info(
      "Moved from {from} to {topic}, given by the monitor: still in the mesh with {n} peer(s); " +
        "reading {from} {s} s more",
      { from: this.#topic, topic, n: this.table.peers().length, s: MOVE_READ_MS / 1000 },
    );
    this.#topic = topic;
    this.#attached();
    if (!this.#announced) return this.#announce(signal);
    await this.#peers.announceJoin();
    this.#peers.keepAlive();
  }

  // Back through a monitor with the lease it had: nothing changed for Kafka, the peers or the
  // routing table. The join is announced again, so that peers that missed something (or
  // dropped this instance meanwhile) exchange routes with it.
  async #rejoin(topic: string, signal: AbortSignal, peers?: number): Promise<void> {
    signal.throwIfAborted();
    this.#attached();
    if (!this.#announced) {
      log.info("Back with the lease {topic} of a join that did not finish: finishing it", {
        topic,
      });
      return this.#announce(signal, peers);
    }
    log.info("Reconnected with the same lease {topic}: still in the mesh", { topic });
    await this.#peers.announceJoin();
    this.#peers.keepAlive();
  }

  // Ends the grace period, if one runs (see #detach).
  #attached(): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
  }

  // The monitor connection dropped after the join (the monitor stopped or died, or the network
  // failed). This instance keeps its lease, consumers and routing table, and goes on serving
  // and calling peers through Kafka while the presence client reconnects through another
  // monitor, which gives it back the same lease; only if none does within the grace period
  // does it leave.
  #detach(why: string): void {
    if (this.#topic === undefined || this.#graceTimer !== undefined) return;
    const grace = this.settings.reconnectGraceMs;
    log.warn(
      "Monitor connection closed ({why}): staying in the mesh for up to {s} s while reconnecting",
      { why, s: grace / 1000 },
    );
    const timer = this.#graceTimer = setTimeout(() => {
      // In turn after a join in progress, and only if that join did not end the detachment.
      this.#joining = this.#joining.then(() => {
        if (this.#graceTimer !== timer) return;
        this.#graceTimer = undefined;
        return this.#leaveNow(`no monitor took it back within ${grace / 1000} s (${why})`);
      }).catch(() => {});
    }, grace);
  }

  async #stopConsumers(): Promise<void> {
    const consumers = [...this.#consumers, ...this.#retiring.keys()];
    this.#retiring.forEach(clearTimeout);
    this.#consumers = [];
    this.#retiring.clear();
    await Promise.all(consumers.map((c) => c.stop()));
  }

  // Leaving takes its turn after a join in progress, so that it never undoes a later join.
  #leave(why: string): Promise<void> {
    const left = this.#joining.then(() => this.#leaveNow(why));
    this.#joining = left.catch(() => {});
    return left;
  }

  async #leaveNow(why: string): Promise<void> {
    this.#attached(); // no grace period left to wait for
    const wasConnected = this.connected;
    this.#topic = undefined;
    this.#announced = false;
    await this.#stopConsumers();
    if (!wasConnected) return;
    this.platform.attachMesh(undefined);
    const n = this.#peers.removeAll(why);
    log.info("Left the mesh ({why}); forgot {n} peer(s)", { why, n });
    this.#lifeCycle.notify({ type: "disconnected", origin: this.platform.origin });
  }
}

// `promise`, or the signal's reason as soon as it aborts.
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Joins the mesh when the platform's `cloud.connector` is `kafka`; returns the connector
 * (whose `joined` resolves once this instance is in the mesh), or undefined with `none`.
 *
 * @throws {ConfigError} For bad connector settings.
 */
export function connectToCloud(
  platform: Platform,
  options: KafkaConnectorOptions = {},
): KafkaConnector | undefined {
  if (platform.cloudConnector !== "kafka") {
    log.info("cloud.connector={c}: this instance runs on its own", { c: platform.cloudConnector });
    return undefined;
  }
  const connector = new KafkaConnector(platform, options);
  connector.start();
  return connector;
}
