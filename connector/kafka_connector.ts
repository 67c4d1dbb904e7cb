/**
 * The Kafka cloud connector: with `cloud.connector=kafka`, a platform joins the mesh. It
 * connects to the presence monitors, consumes exactly its leased partition and its closed user
 * group's partition of `service.monitor`, keeps the distributed routing table from the
 * registry messages (reference section 6.2), and carries events to other instances as Kafka
 * records (section 4.3), large ones in blocks (section 4.4).
 *
 * @module
 */
import { AppError, ConfigError, RouteNotFoundError } from "../bus/errors.ts";
import { EventEnvelope, peekTags } from "../bus/envelope.ts";
import { logger } from "../bus/_log.ts";
import { splitAddress } from "../bus/route.ts";
import type { MeshTransport } from "../bus/mesh.ts";
import { inboxOf } from "../bus/platform.ts";
import type { Platform } from "../bus/platform.ts";
import { BlockAssembler, isBlock, MAX_BLOCK, toBlocks } from "./blocks.ts";
import { KafkaLink } from "./kafka_link.ts";
import type { InRecord, OutRecord, PartitionConsumer } from "./kafka_link.ts";
import { PresenceClient } from "./presence_client.ts";
import type { WebSocketFactory } from "./presence_client.ts";
import { eventRecord, splitVirtualTopic } from "./records.ts";
import { RoutingTable } from "./routing_table.ts";

const log = logger("connector");

/** The route of the connector's health check (list it in `mandatory.health.dependencies`). */
export const HEALTH_ROUTE = "cloud.connector.health";
const REGISTRY = "system.service.registry";
const STALL_MS = 90_000;
const INBOX = "temporary.inbox";
const PEER_WAIT_MS = 5000;

/** A change in the mesh, as told to life-cycle subscribers. */
export interface LifeCycleEvent {
  /** `join`/`leave` of a peer; `connected`/`disconnected` of this instance. */
  type: "join" | "leave" | "connected" | "disconnected";
  /** The peer's origin (join, leave) or this instance's (connected, disconnected). */
  origin: string;
  /** The peer's application name, when known. */
  name?: string;
}

/** Counters of records that were skipped, by reason. */
export interface ConnectorStats {
  /** Records addressed to another instance. */
  misdirected: number;
  /** Values that are not valid envelopes. */
  undecodable: number;
  /** Invalid or duplicate blocks. */
  badBlocks: number;
  /** Block sets that never completed. */
  expiredBlockSets: number;
  /** Incomplete block sets dropped to stay within `block.max.pending.sets` / `.bytes`. */
  droppedBlockSets: number;
  /** Events for a route this instance no longer serves. */
  unknownRoute: number;
  /** Events for a private or system route, which the mesh never delivers. */
  privateRoute: number;
  /** Replies that matched no request waiting on the peer they claim to come from. */
  unmatchedReplies: number;
}

/** Options of a {@link KafkaConnector}. */
export interface KafkaConnectorOptions {
  /** The WebSocket constructor for the presence connection (global WebSocket by default). */
  webSocket?: WebSocketFactory;
}

/**
 * The mesh transport over Kafka. Usually created by {@link connectToCloud}.
 *
 * @example
 * ```ts ignore
 * import { Platform } from "@minimesh/core";
 * import { connectToCloud } from "@minimesh/core/connector";
 * const platform = new Platform(); // with cloud.connector=kafka
 * const connector = await connectToCloud(platform);
 * ```
 */
export class KafkaConnector implements MeshTransport {
  /** The platform that joined the mesh. */
  readonly platform: Platform;
  /** The routing table. */
  readonly table: RoutingTable = new RoutingTable();
  /** Skipped-record counters. */
  readonly stats: ConnectorStats = {
    misdirected: 0,
    undecodable: 0,
    badBlocks: 0,
    expiredBlockSets: 0,
    droppedBlockSets: 0,
    unknownRoute: 0,
    privateRoute: 0,
    unmatchedReplies: 0,
  };
  readonly #link: KafkaLink;
  readonly #client: PresenceClient;
  readonly #group: number;
  readonly #monitorTopic: string;
  readonly #personality: string;
  readonly #blocks: BlockAssembler;
  readonly #listeners = new Set<(e: LifeCycleEvent) => void>();
  readonly #lifeCycleRoutes = new Set<string>();
  #consumers: PartitionConsumer[] = [];
  #topic: string | undefined;
  #connected = false;
  #exchangeTimer: ReturnType<typeof setTimeout> | undefined;
  #exchangeAsk = false;
  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #firstJoin: { promise: Promise<void>; resolve: () => void };

  /**
   * Creates the connector from the platform's configuration.
   *
   * @throws {ConfigError} For a bad `closed.user.group` or presence URL.
   */
  constructor(platform: Platform, options: KafkaConnectorOptions = {}) {
    this.platform = platform;
    const c = platform.config;
    const maxGroups = Math.min(30, Math.max(3, c.getNumber("max.closed.user.groups", 10)));
    this.#group = c.getNumber("closed.user.group", 1);
    if (!Number.isInteger(this.#group) || this.#group < 1 || this.#group > maxGroups) {
      throw new ConfigError("closed.user.group", this.#group, `an integer from 1 to ${maxGroups}`);
    }
    this.#monitorTopic = c.getString("monitor.topic", "service.monitor");
    this.#blocks = new BlockAssembler({
      maxSets: Math.max(1, c.getNumber("block.max.pending.sets", 100)),
      maxPendingBytes: Math.max(
        MAX_BLOCK,
        c.getNumber("block.max.pending.bytes", 128 * 1024 * 1024),
      ),
    });
    const type = c.getChoice("application.personality", ["APP", "REST", "RESOURCES"], "APP");
    this.#personality = `${platform.name}, ${type}`;
    const brokers = c.getList("bootstrap.servers");
    this.#link = new KafkaLink({
      brokers: brokers.length ? brokers : ["127.0.0.1:9092"],
      clientId: `app-${platform.origin.slice(8, 16)}`,
    });
    const urls = c.getList("presence.url");
    const idle = Math.max(20, c.getNumber("websocket.idle.timeout", 60));
    let resolve!: () => void;
    this.#firstJoin = { promise: new Promise<void>((r) => (resolve = r)), resolve };
    try {
      this.#client = new PresenceClient({
        urls: urls.length
          ? urls
          : ["ws://127.0.0.1:8080/ws/presence", "ws://127.0.0.1:8081/ws/presence"],
        origin: platform.origin,
        info: {
          name: platform.name,
          version: platform.version,
          group: String(this.#group),
          type,
        },
        keepAliveMs: Math.max(10_000, idle * 500 - 3000),
        onReady: (topic) => this.#join(topic),
        onLost: (code, reason) => this.#leaveMesh(`monitor connection closed (${code} ${reason})`),
        onKeepAlive: () => this.#groupKeepAlive(),
        webSocket: options.webSocket,
      });
    } catch (e) {
      throw new ConfigError("presence.url", urls.join(","), (e as Error).message);
    }
  }

  /** Kafka traffic counters of this instance (produce requests, records, fetched batches). */
  get traffic(): Readonly<KafkaLink["counters"]> {
    return this.#link.counters;
  }

  /** Whether this instance is in the mesh now. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The leased virtual topic while connected. */
  get topic(): string | undefined {
    return this.#topic;
  }

  /** Resolves the first time this instance has joined the mesh. */
  get joined(): Promise<void> {
    return this.#firstJoin.promise;
  }

  /** Starts: registers the health route and connects to the presence monitors. */
  start(): void {
    if (!this.platform.hasRoute(HEALTH_ROUTE)) {
      this.platform.registerPrivate(HEALTH_ROUTE, (headers) => this.#health(headers.type), 2);
    }
    log.info("Automatic segmentation when event payload exceeds {max}", {
      max: MAX_BLOCK.toLocaleString("en-US"),
    });
    this.#housekeeping = setInterval(() => this.#housekeep(), 5000);
    this.#client.start();
  }

  /** Leaves the mesh: tells the peers at once, closes the monitor connection, stops reading. */
  async stop(): Promise<void> {
    clearInterval(this.#housekeeping);
    clearTimeout(this.#exchangeTimer);
    if (this.#connected) {
      await this.#toGroup({ type: "leave", origin: this.platform.origin }).catch(() => {});
    }
    this.#client.stop();
    await this.#leaveMesh("stopping");
    await this.#link.close();
  }

  /** Calls `listener` on every join, leave, connect and disconnect; returns an unsubscribe. */
  onLifeCycle(listener: (e: LifeCycleEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Sends every life-cycle event to a local route (headers `type`, `origin`, `name`), as the
   * reference's `subscribe_life_cycle` does.
   */
  subscribeLifeCycle(route: string): void {
    this.#lifeCycleRoutes.add(route);
  }

  /** Stops sending life-cycle events to `route`. */
  unsubscribeLifeCycle(route: string): void {
    this.#lifeCycleRoutes.delete(route);
  }

  // ---- MeshTransport ----

  /**
   * Whether a peer serves `to` (a route, or `route@origin` of a known peer). A reply to a
   * peer's inbox always qualifies: the peer exists, even if its routes have not arrived yet.
   */
  reaches(to: string): boolean {
    if (!this.#connected) return false;
    const { route, origin } = splitAddress(to);
    if (origin !== undefined) {
      return origin !== this.platform.origin && (this.knows(origin) || route === INBOX);
    }
    return this.table.origins(route).some((o) => o !== this.platform.origin);
  }

  /** Whether `origin` is a known peer. */
  knows(origin: string): boolean {
    return this.table.peer(origin) !== undefined;
  }

  /** Sends to one instance serving the route (round-robin) or to `route@origin`. */
  send(event: EventEnvelope): Promise<void> {
    const to = event.to!;
    const { route, origin } = splitAddress(to);
    let dest = origin;
    if (dest === undefined) {
      dest = this.table.pick(route);
      // Our own public routes are in the table too; a local route never gets here, so skip us.
      if (dest === this.platform.origin) dest = this.table.pick(route);
    }
    if (dest === undefined || dest === this.platform.origin) {
      return Promise.reject(new RouteNotFoundError(to));
    }
    if (!this.knows(dest)) {
      // A reply to a caller whose join is still on its way: wait for it a little.
      if (route !== INBOX) return Promise.reject(new RouteNotFoundError(to));
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
      const off = this.onLifeCycle((e) => {
        if (e.type === "join" && e.origin === origin) {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  /** Sends one copy to every instance serving the route, this one included (over Kafka). */
  broadcast(event: EventEnvelope): Promise<void> {
    const { route } = splitAddress(event.to!);
    const origins = this.table.origins(route);
    if (origins.length === 0) return Promise.reject(new RouteNotFoundError(route));
    event.to = route;
    return Promise.all(origins.map((o) => this.#sendTo(o, event))).then(() => {});
  }

  /** Tells the group about a public route registered or released here. */
  routeChanged(route: string, added: boolean): void {
    if (!this.#connected) return;
    const me = this.platform.origin;
    if (added) this.table.addRoute(route, me, this.#personality);
    else this.table.removeRoute(route, me);
    const headers: Record<string, string> = {
      type: added ? "add" : "unregister",
      origin: me,
      route,
    };
    if (added) headers.personality = this.#personality;
    headers.final = "true";
    this.#toGroup(headers).catch(() => {});
  }

  /** The routing table as `/info/routes` shows it (the reference's `network` section). */
  describe(): Record<string, unknown> {
    const routes: Record<string, string[]> = {};
    for (const [route, byOrigin] of [...this.table.routes()].sort(([a], [b]) => a < b ? -1 : 1)) {
      routes[route] = [...byOrigin].map(([origin, p]) => {
        const [name, type] = p.split(", ");
        return `${name}, ${(type ?? "").toLowerCase()}, ${origin}`;
      });
    }
    return {
      routes,
      nodes: this.table.peers().map((p) =>
        `${p.topic}, ${new Date(p.lastSeen).toISOString()}, ${p.origin}`
      ),
      name: `${this.platform.name}, v${this.platform.version}`,
      origin: this.platform.origin,
      group: this.#group,
      topic: this.#topic ?? null,
      connected: this.#connected,
    };
  }

  // ---- sending ----

  #sendTo(origin: string, event: EventEnvelope): Promise<void> {
    const peer = this.table.peer(origin);
    const topic = origin === this.platform.origin ? this.#topic : peer?.topic;
    if (!topic) return Promise.reject(new AppError(503, `Peer ${origin} has no topic yet`));
    const [physical, partition] = splitVirtualTopic(topic);
    // A request of ours: its id gets the peer's token (only its reply can complete it), and if
    // that peer leaves, its caller hears so at once (#removePeer).
    const cid = event.correlationId;
    if (cid !== undefined && event.replyTo === this.platform.inboxAddress) {
      event.correlationId = inboxOf(this.platform).sentTo(cid, origin);
    }
    const bytes = event.toBytes();
    const records: OutRecord[] = bytes.length <= MAX_BLOCK
      ? [eventRecord(physical, partition, origin, bytes)] // encoded once, above
      : toBlocks(event.id, bytes).map((b) => eventRecord(physical, partition, origin, b));
    return this.#link.send(records).catch((e) => {
      // The client hears that the mesh is unavailable; broker addresses stay in the log.
      log.error("Cannot send to {origin}: {message}", { origin, message: (e as Error).message });
      throw new AppError(503, "Mesh unavailable", { cause: e });
    });
  }

  #toGroup(headers: Record<string, string>, body?: unknown): Promise<void> {
    const e = new EventEnvelope({ to: `${REGISTRY}@monitor-${this.#group}`, headers, body });
    return this.#link.send([
      eventRecord(this.#monitorTopic, this.#group, `monitor-${this.#group}`, e),
    ]);
  }

  // My public routes to the group, at most once per 100 ms; `exchange` asks peers for theirs.
  #sendMyRoutes(exchange: boolean): void {
    this.#exchangeAsk ||= exchange;
    if (this.#exchangeTimer !== undefined) return;
    this.#exchangeTimer = setTimeout(() => {
      this.#exchangeTimer = undefined;
      if (!this.#connected) return;
      const headers: Record<string, string> = {
        type: "add",
        origin: this.platform.origin,
        topic: this.#topic ?? "",
        name: this.platform.name,
        version: this.platform.version,
      };
      if (this.#exchangeAsk) headers.exchange = "true";
      this.#exchangeAsk = false;
      const routes: Record<string, string> = {};
      for (const [route, p] of this.table.routesOf(this.platform.origin)) routes[route] = p;
      this.#toGroup(headers, routes).catch(() => {});
    }, 100);
  }

  // ---- joining and leaving ----

  async #join(topic: string): Promise<void> {
    const [physical, partition] = splitVirtualTopic(topic);
    if (!physical || !Number.isInteger(partition)) throw new Error(`Invalid topic ${topic}`);
    const own = this.#link.consumePartition(physical, partition, (r) => this.#onOwnRecord(r));
    const group = this.#link.consumePartition(
      this.#monitorTopic,
      this.#group,
      (r) => this.#onGroupRecord(r),
    );
    this.#consumers = [own, group];
    log.info("Subscribed {topic}.{partition}", { topic: physical, partition });
    try {
      await Promise.all([own.ready, group.ready]);
    } catch (e) {
      await Promise.all(this.#consumers.map((c) => c.stop()));
      this.#consumers = [];
      throw e;
    }
    log.info("{topic}, partition {partition} ready", { topic: physical, partition });
    this.#topic = topic;
    const me = this.platform.origin;
    for (const r of this.platform.routes()) {
      if (!r.isPrivate) this.table.addRoute(r.route, me, this.#personality);
    }
    this.#connected = true;
    this.platform.attachMesh(this);
    await this.#toGroup({
      type: "join",
      origin: me,
      topic,
      name: this.platform.name,
      version: this.platform.version,
    });
    this.#groupKeepAlive();
    this.#notify({ type: "connected", origin: me });
    this.#firstJoin.resolve();
  }

  async #leaveMesh(why: string): Promise<void> {
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#topic = undefined;
    const consumers = this.#consumers;
    this.#consumers = [];
    await Promise.all(consumers.map((c) => c.stop()));
    if (!wasConnected) return;
    this.platform.attachMesh(undefined);
    const peers = this.table.peers();
    for (const peer of peers) this.#removePeer(peer.origin, why, true);
    this.table.clear();
    log.info("Left the mesh ({why}); forgot {n} peer(s)", { why, n: peers.length });
    this.#notify({ type: "disconnected", origin: this.platform.origin });
  }

  #groupKeepAlive(): void {
    if (!this.#connected) return;
    this.#toGroup({
      type: "keep-alive",
      origin: this.platform.origin,
      topic: this.#topic ?? "",
      name: this.platform.name,
      version: this.platform.version,
    }).catch(() => {});
  }

  // ---- receiving ----

  #onOwnRecord(r: InRecord): void {
    if (r.headers._event_ === undefined) return;
    const rx = r.headers._rx_;
    if (rx !== undefined && rx !== this.platform.origin && !rx.includes("monitor")) {
      this.stats.misdirected++;
      log.warn("Skipping record {offset}: it belongs to {rx}", { offset: r.offset, rx });
      return;
    }
    let e = this.#decode(r.value, `record ${r.offset}`);
    if (e === undefined) return;
    if (isBlock(e)) {
      const result = this.#blocks.add(e, Date.now());
      if (result.kind === "invalid") {
        this.stats.badBlocks++;
        log.warn("Skipping block: {reason}", { reason: result.reason });
        return;
      }
      if (result.kind === "partial") {
        for (const [id, got, max] of result.dropped) {
          this.stats.droppedBlockSets++;
          log.warn("Block set {id} dropped with {got} of {max} blocks: over the pending caps", {
            id,
            got,
            max,
          });
        }
        return;
      }
      e = this.#decode(result.bytes, "reassembled event");
      if (e === undefined) return;
    }
    this.#deliver(e);
  }

  #deliver(e: EventEnvelope): void {
    const tags = peekTags(e);
    if (tags?.broadcast !== undefined) tags.broadcast = "3";
    const at = e.to?.indexOf("@monitor") ?? -1;
    if (at > 0) e.to = e.to!.slice(0, at);
    const route = e.to === undefined ? undefined : splitAddress(e.to).route;
    if (route === INBOX) {
      // A reply counts only for a request of ours still waiting on the peer it went to.
      if (!inboxOf(this.platform).completeFromPeer(e)) {
        this.stats.unmatchedReplies++;
        log.debug("Dropped a reply {cid} that no request waits for", { cid: e.correlationId });
      }
      return;
    }
    if (route !== undefined && this.#isPrivate(route)) {
      // Private routes are reachable from their own process only; the sender hears 404.
      this.stats.privateRoute++;
      log.warn("Refused an event from the mesh to the private route {route}", { route });
      e.to = route;
      return this.#notFound(e, new RouteNotFoundError(route));
    }
    try {
      this.platform.deliverLocal(e);
    } catch (err) {
      this.stats.unknownRoute++;
      log.warn("Cannot deliver {to} from the mesh: {message}", {
        to: e.to,
        message: (err as Error).message,
      });
      this.#notFound(e, err as Error);
    }
  }

  #isPrivate(route: string): boolean {
    return this.platform.hasRoute(route) && this.platform.isPrivate(route);
  }

  // Tells a requester that its event could not be delivered here.
  #notFound(e: EventEnvelope, err: Error): void {
    if (e.replyTo === undefined || e.to === undefined) return;
    const reply = new EventEnvelope({
      to: e.replyTo,
      correlationId: e.correlationId,
      status: 404,
      body: err.message,
      tags: e.tags,
    });
    try {
      this.platform.deliver(reply)?.catch(() => {});
    } catch { /* the caller is gone too */ }
  }

  // An envelope, or undefined (counted and logged) for bytes that are not one.
  #decode(bytes: Uint8Array, what: string): EventEnvelope | undefined {
    try {
      return EventEnvelope.fromBytes(bytes);
    } catch (err) {
      this.stats.undecodable++;
      log.warn("Skipping {what}: {message}", { what, message: (err as Error).message });
      return undefined;
    }
  }

  #onGroupRecord(r: InRecord): void {
    if (r.headers._event_ === undefined) return;
    const e = this.#decode(r.value, `group record ${r.offset}`);
    if (!e?.to?.startsWith(REGISTRY)) return;
    try {
      this.#onRegistry(e.headers, e.body);
    } catch (err) {
      log.warn("Skipping registry message {type}: {message}", {
        type: e.headers.type,
        message: (err as Error).message,
      });
    }
  }

  #onRegistry(h: Record<string, string>, body: unknown): void {
    const origin = h.origin;
    const me = this.platform.origin;
    if (!origin) throw new TypeError("no origin header");
    const now = Date.now();
    switch (h.type) {
      case "join":
        if (origin === me) return;
        this.#meet(origin, h, now);
        this.#sendMyRoutes(true);
        return;
      case "add": {
        if (origin === me) return;
        this.#meet(origin, h, now);
        if (h.route) {
          this.#addRoute(h.route, origin, h.personality ?? "");
        } else if (body && typeof body === "object") {
          for (const [route, p] of Object.entries(body as Record<string, unknown>)) {
            this.#addRoute(route, origin, String(p));
          }
        }
        if (h.exchange === "true") this.#sendMyRoutes(false);
        return;
      }
      case "unregister":
        if (origin === me || !h.route) return;
        if (this.table.removeRoute(h.route, origin)) {
          log.info("{route} {origin} unregistered", { route: h.route, origin });
        }
        return;
      case "keep-alive":
        if (origin === me) return this.#removeStalledPeers(now);
        if (this.#meet(origin, h, now)) this.#sendMyRoutes(true);
        return;
      case "leave":
        if (origin !== me) this.#removePeer(origin, "left");
        return;
    }
  }

  // Records a peer; logs and announces it the first time it has a name. True when new.
  #meet(origin: string, h: Record<string, string>, now: number): boolean {
    const isNew = this.table.upsertPeer(
      { origin, topic: h.topic ?? "", name: h.name ?? "", version: h.version ?? "" },
      now,
    );
    if (isNew) {
      const p = this.table.peer(origin)!;
      log.info("Peer {origin} joins ({name} {version})", {
        origin,
        name: p.name || "?",
        version: p.version || "?",
      });
      this.#notify({ type: "join", origin, name: p.name || undefined });
    }
    return isNew;
  }

  #addRoute(route: string, origin: string, personality: string): void {
    if (this.table.addRoute(route, origin, personality)) {
      log.info("{route} ({personality}.{origin}) registered", { route, personality, origin });
    }
  }

  #removePeer(origin: string, why: string, quiet = false): void {
    const peer = this.table.peer(origin);
    if (peer === undefined) return;
    const routes = this.table.removePeer(origin);
    if (!quiet) {
      log.info("Peer {origin} {why} ({name} {version})", {
        origin,
        why,
        name: peer.name,
        version: peer.version,
      });
      for (const route of routes) log.info("{route} {origin} unregistered", { route, origin });
    }
    // Requests waiting on this peer fail now instead of at their timeout.
    const inbox = inboxOf(this.platform);
    for (const cid of inbox.waitingOn(origin)) {
      this.platform.deliverLocal(
        new EventEnvelope({
          to: this.platform.inboxAddress,
          correlationId: cid,
          status: 503,
          body: quiet
            ? `This instance left the mesh (${why}) before ${origin} replied`
            : `Peer ${origin} (${peer.name}) left before replying`,
        }),
      );
    }
    inbox.forgetPeer(origin);
    this.#notify({ type: "leave", origin, name: peer.name || undefined });
  }

  #removeStalledPeers(now: number): void {
    for (const p of this.table.peers()) {
      if (now - p.lastSeen > STALL_MS) this.#removePeer(p.origin, "stalled");
    }
  }

  #notify(e: LifeCycleEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        log.warn("Life-cycle listener failed: {message}", { message: (err as Error).message });
      }
    }
    for (const route of this.#lifeCycleRoutes) {
      const headers: Record<string, string> = { type: e.type, origin: e.origin };
      if (e.name) headers.name = e.name;
      try {
        this.platform.deliverLocal(new EventEnvelope({ to: route, headers }));
      } catch (err) {
        log.warn("Life-cycle route {route}: {message}", {
          route,
          message: (err as Error).message,
        });
      }
    }
  }

  // ---- health and housekeeping ----

  async #health(type: string | undefined): Promise<unknown> {
    if (type === "info") {
      return { service: "kafka", href: this.#link.brokers[0], topics: "on-demand" };
    }
    if (type !== "health") throw new AppError(400, "Usage: type=info or type=health");
    const topic = this.#topic;
    if (!this.#connected || topic === undefined) {
      throw new AppError(503, "Not connected to a presence monitor");
    }
    try {
      const took = await this.#link.loopback(...splitVirtualTopic(topic));
      return `Loopback test took ${took} ms`;
    } catch (e) {
      throw new AppError(408, (e as Error).message);
    }
  }

  #housekeep(): void {
    const now = Date.now();
    for (const [id, got, max] of this.#blocks.expire(now)) {
      this.stats.expiredBlockSets++;
      log.warn("Block set {id} expired with {got} of {max} blocks", { id, got, max });
    }
  }
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
