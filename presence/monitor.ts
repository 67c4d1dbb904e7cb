/**
 * The presence monitor: the mesh's control plane. Application instances connect over a
 * websocket (`/ws/presence/<origin>`), get a virtual topic (one Kafka partition) leased to
 * them, and keep it while they send keep-alives. Leaves are announced to each closed
 * user group's partition of `service.monitor`. Several monitors share one table over
 * `service.monitor` partition 0 (see `lease_table.ts` and docs/presence.md).
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import type { Platform } from "../bus/platform.ts";
import { serve as serveHere } from "#runtime";
import { serverLimits, serverTls } from "../runtime/server.ts";
import type { RunningServer, ServeFunction } from "../runtime/server.ts";
import type { InRecord, KafkaClient, OutRecord } from "../kafka/client.ts";
import { kafkaClient } from "../kafka/factory.ts";
import { describeKafka } from "../kafka/properties.ts";
import { explainKafkaError, missingTopics } from "../kafka/startup.ts";
import type { OAuthBearerProvider } from "../kafka/properties.ts";
import { eventOf, eventRecord, splitVirtualTopic } from "../kafka/records.ts";
import { AppStats, parseReport } from "./app_stats.ts";
import type { AppReport } from "../connector/report.ts";
import { STATS_INTERVAL_MS } from "../connector/report.ts";
import { DashboardFeed, dashboardState, FIGURES_DELAY_MS } from "./dashboard.ts";
import { monitorHandler } from "./http.ts";
import {
  fromJavaInfo,
  isJavaRecord,
  JAVA_ALIVE_INTERVAL_MS,
  JAVA_MONITOR_SILENCE_MS,
  javaInfo,
  parseJava,
  RsvpBids,
  writerOf,
} from "./java_monitor.ts";
import type { JavaMessage } from "./java_monitor.ts";
import { monitorInfo, monitorMetrics } from "./info.ts";
import { LeaseTable, virtualTopics } from "./lease_table.ts";
import type { ConnectionInfo, ControlMessage, Effect, TableSnapshot } from "./lease_table.ts";
import {
  CLOSE,
  controlEnvelope,
  isControl,
  leaveEnvelope,
  parseControl,
  readyEnvelope,
  snapshotParts,
} from "./protocol.ts";
import type { MonitorMessage } from "./protocol.ts";
import { MAX_FRAME, PRESENCE_PATH, Sessions } from "./sessions.ts";
import type { Session } from "./sessions.ts";
import { monitorSettings } from "./settings.ts";
import type { MonitorSettings } from "./settings.ts";
import {
  MESH_PROTOCOL,
  meshTokens,
  NOT_OWNER,
  tokenChecker,
  UNAUTHORIZED,
} from "../connector/credentials.ts";
import type { TlsFiles, WebSocketRefusal } from "../runtime/server.ts";

/** The most a `stats` record of a monitor holds (bytes, estimated from UTF-8 at worst). */
const SHARE_BYTES = 256 * 1024;
const log = logger("presence");

interface KnownMonitor {
  lastSeen: number;
  started: string;
  version: string;
  /** A Java monitor (heard in its own protocol). */
  java?: boolean;
}

/** Options of a {@link PresenceMonitor}. */
export interface PresenceMonitorOptions {
  /** The server adapter (the runtime's by default). */
  serve?: ServeFunction;
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
 * A presence monitor; `await using` stops it at the end of a scope.
 *
 * @example
 * ```ts
 * import { Platform } from "@minimesh/core";
 * import { PresenceMonitor } from "@minimesh/core/presence";
 * // Needs a broker: the doc test type-checks this function without calling it.
 * export async function monitorFor(ms: number): Promise<void> {
 *   await using monitor = new PresenceMonitor(new Platform({ args: ["-Dserver.port=8080"] }));
 *   await monitor.start();
 *   await new Promise((r) => setTimeout(r, ms));
 * } // the monitor stops here, handing its sessions over to the other monitors
 * ```
 */
export class PresenceMonitor implements AsyncDisposable {
  /** The monitor's own platform (origin id, name, version, configuration). */
  readonly platform: Platform;
  /** Its settings. */
  readonly settings: MonitorSettings;
  readonly #serve: ServeFunction;
  #tls: TlsFiles | undefined;
  readonly #kafka: KafkaClient;
  readonly #table: LeaseTable;
  readonly #sessions: Sessions;
  readonly #claiming = new Set<string>();
  readonly #monitors = new Map<string, KnownMonitor>();
  /** Monitors that stopped gracefully → when what they still hold is released (ms). */
  readonly #handedOver = new Map<string, number>();
  #server: RunningServer | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ready = false;
  #stopping = false;
  #bootstrap:
    | {
      buffer: [bigint, MonitorMessage][];
      done: () => void;
      parts: Map<string, Map<number, TableSnapshot>>;
    }
    | undefined;
  #lastAlive = 0;
  /** What is wrong with the mesh's topics, while something is. */
  #topicProblem: string | undefined;
  #checkingTopics = false;
  /** Each app topic's last look or creation (see #prepare); `at` 0 while it runs. */
  readonly #preparing = new Map<string, { p: Promise<number>; at: number }>();
  /** Kafka was away or lost topics: messages may be lost, so say what this monitor holds. */
  #resync = false;
  /** Which of `mesh.tokens` a client offered (its position), -1 for none; unset without. */
  readonly #tokenOf: ((protocols: readonly string[]) => number) | undefined;
  /** Websockets refused for their credential (4401), for /metrics. */
  #unauthorized = 0;
  /** What the mesh's applications reported, for the dashboard. */
  readonly #stats = new AppStats();
  #lastShare = 0;
  /** The pages watching the dashboard. */
  readonly #dashboard: DashboardFeed;
  /** The Java monitors' lease lock (java_monitor.ts): the bids, and sessions waiting for it. */
  readonly #bids = new RsvpBids();
  readonly #waiting = new Set<Session>();
  #bidSentAt = 0;
  #bidInFlight = false;
  /** When this monitor's current round was sent (0: none). */
  #roundAt = 0;
  #lastJavaAlive = 0;

  /**
   * Creates a monitor; {@link PresenceMonitor.start} starts it.
   *
   * @param platform Its identity and configuration.
   * @param options The server adapter and Kafka client, when not the defaults (a server adapter
   * alone, as before issue 11, is still accepted).
   */
  constructor(platform: Platform, options: PresenceMonitorOptions | ServeFunction = {}) {
    if (typeof options === "function") options = { serve: options };
    this.platform = platform;
    const s = this.settings = monitorSettings(platform.config);
    this.#serve = options.serve ?? serveHere;
    this.#kafka = options.kafka ??
      kafkaClient(s.kafka, `monitor-${platform.origin.slice(8, 16)}`, options.oauthBearer);
    this.#table = new LeaseTable(
      virtualTopics(s.topicPrefix, s.partitionsPerTopic, s.maxVirtualTopics),
    );
    this.#sessions = new Sessions({
      settings: s,
      monitor: platform.origin,
      ready: () => this.#ready,
      publish: (messages) => this.#publish(messages),
      claim: (session) => this.#claimFor(session),
      ownerOf: (origin) => this.#table.ownerOf(origin, Date.now()),
      credential: (protocols) => {
        const i = this.#tokenOf?.(protocols) ?? -1;
        return i < 0 ? undefined : `token ${i + 1}`;
      },
      report: (session, body) => this.#onReport(session.origin, parseReport(body)),
      connected: (origin) => this.#table.connection(origin) !== undefined,
    });
    this.#dashboard = new DashboardFeed(() =>
      dashboardState({
        monitor: { origin: platform.origin, name: platform.name, version: platform.version },
        monitors: this.#monitors,
        connections: this.#table.connections(),
        stats: this.#stats,
        events: this.#dashboard.events,
      })
    );
    const tokens = meshTokens(platform.config);
    if (tokens.length) this.#tokenOf = tokenChecker(tokens);
    platform.addMetricSource(() =>
      monitorMetrics(this.#table, this.#sessions, this.#monitors.size, this.#unauthorized)
    );
  }

  /** The port it serves on, once started. */
  get port(): number {
    return this.#server?.port ?? this.settings.port;
  }

  /** Whether it accepts applications (its table is in sync). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Known monitors, this one included: origin → last `alive` seen (ms). */
  monitors(): Map<string, number> {
    return new Map([...this.#monitors].map(([k, v]) => [k, v.lastSeen]));
  }

  /** The shared table of connections and leases. */
  get table(): LeaseTable {
    return this.#table;
  }

  /**
   * The live dashboard's state as a server-sent event stream (`GET /dashboard/events`): the
   * current state at once, then each change; 503 when 32 pages stream already, 429 when the
   * client at address `client` has 4 open.
   */
  dashboardStream(client?: string): Response {
    return this.#dashboard.stream(client);
  }

  /** Kafka's address, for the health check's `type=info`. */
  get brokers(): readonly string[] {
    return this.#kafka.brokers;
  }

  /**
   * Starts serving (`handler` answers plain HTTP: the monitor's actuator endpoints by default),
   * joins the monitors' channel and, once in sync, accepts applications.
   *
   * @throws {Error} When `service.monitor` exists with too few partitions ("SYSTEM NOT
   * OPERATIONAL"), or Kafka cannot be reached.
   */
  async start(
    handler: (req: Request) => Response | Promise<Response> = monitorHandler(this),
  ): Promise<void> {
    const s = this.settings;
    this.#tls = serverTls(this.platform.config);
    this.#server = await this.#serve({
      port: s.port,
      hostname: s.host,
      wsPrefix: PRESENCE_PATH,
      fetch: handler,
      limits: serverLimits(this.platform.config, {
        maxConnections: s.maxConnections + s.maxPending + 100, // sessions, pending ones, HTTP
        maxBodyBytes: 1024 * 1024,
        maxFrameBytes: MAX_FRAME,
      }),
      handlers: this.#sessions.handlers,
      pingTimeoutMs: s.hungTimeout * 1000,
      tls: this.#tls,
      subprotocol: MESH_PROTOCOL,
      authorize: this.#authorizer(),
    });
    log.info("Websocket server running on port {port}{tls}", {
      port: this.#server.port,
      tls: this.#tls ? " (TLS: wss and https)" : "",
    });
    const need = s.maxGroups + 1;
    log.info("Kafka: {kafka}", { kafka: describeKafka(s.kafka) });
    // The first call to Kafka shows whether it accepts this monitor at all; say why not in
    // words that name the setting.
    const topics = await this.#kafka.topicPartitions().catch((e) => {
      throw new Error(explainKafkaError(e, s.kafka), { cause: e });
    });
    if (s.kafka.topics === "pre-allocated") {
      const apps = new Set(this.#table.all.map((vt) => splitVirtualTopic(vt)[0]));
      const missing = missingTopics(topics, [
        [s.monitorTopic, need],
        ...[...apps].map((t) => [t, s.partitionsPerTopic] as const),
      ]);
      if (missing.length) {
        throw new Error(
          `kafka.topics=pre-allocated, and an administrator must first create: ` +
            missing.join(", "),
        );
      }
    }
    const have = await this.#kafka.ensureTopic(s.monitorTopic, need);
    if (have < need) {
      throw new Error(
        `SYSTEM NOT OPERATIONAL: ${s.monitorTopic} has ${have} partitions; ` +
          `max.closed.user.groups=${s.maxGroups} needs ${need}`,
      );
    }
    const synced = new Promise<void>((done) => (
      this.#bootstrap = { buffer: [], done, parts: new Map() }
    ));
    const consumer = this.#kafka.consumePartition(s.monitorTopic, 0, (r) => this.#onRecord(r));
    await consumer.ready;
    log.info("{topic}, partition 0 ready", { topic: s.monitorTopic });
    await this.#publish([
      this.#aliveMessage(),
      { type: "download", monitor: this.platform.origin },
    ]);
    // A running monitor answers `download` with a snapshot within milliseconds; with no
    // answer in time (2 s) this monitor is the first and starts from an empty table.
    const timeout = setTimeout(() => this.#finishBootstrap(undefined), s.bootstrapWaitMs);
    await synced;
    clearTimeout(timeout);
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#ready = true;
    log.info("Presence monitor {origin} ready: {n} connection(s) known", {
      origin: this.platform.origin,
      n: this.#table.connections().length,
    });
  }

  /**
   * Hands its sessions over and stops: tells the other monitors it is going (they keep its
   * sessions' leases for `presence.handover.grace` seconds), closes every session with 1001 so
   * that the applications reconnect through another monitor at once, keeping their leases,
   * then stops consuming and serving. Leases not taken back in time are released then.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#ready = false;
    clearInterval(this.#timer);
    // First the message, then the close: a monitor must know of the handover before the
    // applications reach it, or it could take their sessions for the old ones' leftovers.
    await this.#publish([{ type: "handover", monitor: this.platform.origin }]).catch(() => {});
    this.#sessions.closeAll("monitor shutting down");
    this.#dashboard.close();
    await this.#server?.close().catch(() => {});
    await this.#kafka.close();
  }

  // With `mesh.tokens` set, a websocket without one of them is closed before its session
  // exists (refusals logged at most every 5 s, with their count); without, the mesh is open
  // as in the Java original, and the log says so once.
  #authorizer(): ((u: { protocols: string[] }) => WebSocketRefusal | undefined) | undefined {
    const tokenOf = this.#tokenOf;
    if (tokenOf === undefined) {
      log.warn(
        "The mesh is open: any client that reaches this monitor can join it. Set mesh.tokens " +
          "(or MESH_TOKENS) on the monitors and the applications to require a token",
      );
      return undefined;
    }
    let refused = 0;
    let loggedAt = 0;
    return ({ protocols }) => {
      if (tokenOf(protocols) >= 0) return undefined;
      refused++;
      this.#unauthorized++;
      const now = Date.now();
      if (now - loggedAt >= 5000) {
        log.warn("Refused {n} websocket(s) without a valid mesh token", { n: refused });
        loggedAt = now;
        refused = 0;
      }
      return { code: UNAUTHORIZED, reason: "A valid mesh token is required" };
    };
  }

  /** Stops the monitor (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Kafka loopback through partition 0, and the number of mesh topics.
   *
   * @returns The message for `/health`, e.g. `Loopback test took 3 ms; System contains 2 topics`.
   * @throws {Error} When the loopback does not come back within 5 s or Kafka is unreachable.
   */
  async loopback(): Promise<string> {
    if (!this.#kafka.available) throw new Error("Kafka is unreachable");
    if (this.#topicProblem !== undefined) throw new Error(this.#topicProblem);
    const took = await this.#kafka.loopback(this.settings.monitorTopic, 0);
    const topics = (await this.meshTopics()).length;
    return `Loopback test took ${took} ms; System contains ${topics} topics`;
  }

  /** The mesh's topics with their partition counts, sorted: `[["multiplex.0001", 32], ...]`. */
  async meshTopics(): Promise<[string, number][]> {
    const all = await this.#kafka.topicPartitions();
    const prefix = `${this.settings.topicPrefix}.`;
    return [...all].filter(([t]) => t === this.settings.monitorTopic || t.startsWith(prefix))
      .sort(([a], [b]) => a < b ? -1 : 1);
  }

  /** The `more` section of `/info`, shaped as in the guide. */
  async info(): Promise<Record<string, unknown>> {
    const topics = await this.meshTopics().catch(() => [] as [string, number][]);
    return monitorInfo(this.#table, topics, this.monitors());
  }

  // With a Java monitor in the mesh a session waits for the lease lock (#rsvpRound); else it
  // claims at once.
  #claimFor(s: Session): MonitorMessage[] | undefined {
    s.claimed = true;
    if (!this.#mixed()) {
      const claim = this.#nextClaim(s);
      return claim === undefined ? undefined : [claim];
    }
    this.#waiting.add(s);
    queueMicrotask(() => this.#rsvpRound());
    return [];
  }

  // The lease the application says it holds when it is free (all monitors restarted and the
  // table is new: it goes on with the same partition), else the first free one.
  #nextClaim(s: Session): (MonitorMessage & { type: "claim" }) | undefined {
    const hint = s.hint;
    s.hint = undefined; // once: a rejected claim goes on with the first free topic
    const topic = hint !== undefined && this.#table.isFree(hint) && !this.#claiming.has(hint)
      ? hint
      : this.#table.nextFree(this.#claiming);
    if (topic === undefined) {
      this.#sessions.drop(
        s,
        CLOSE.TRY_AGAIN,
        `All virtual topics (${this.#table.all.length}) are busy`,
      );
      return undefined;
    }
    s.claimed = true;
    this.#claiming.add(topic);
    return { type: "claim", origin: s.origin, session: s.id, topic, monitor: this.platform.origin };
  }

  // ---- the monitors' channel (partition 0) ----

  #aliveMessage(): MonitorMessage {
    this.#lastAlive = Date.now();
    return {
      type: "alive",
      monitor: this.platform.origin,
      version: this.platform.version,
      started: this.platform.startTime.toISOString(),
    };
  }

  async #publish(messages: MonitorMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const quiet = this.#mixed();
    if (quiet) messages = messages.flatMap((m) => this.#withJavaTwin(m));
    const records = messages.map((m) =>
      eventRecord(this.settings.monitorTopic, 0, "monitor-0", controlEnvelope(m, quiet))
    );
    try {
      await this.#kafka.send(records);
    } catch (e) {
      log.error("Cannot publish to {topic}: {message}", {
        topic: this.settings.monitorTopic,
        message: (e as Error).message,
      });
      throw e;
    }
  }

  #onRecord(r: InRecord): void {
    let msg: MonitorMessage;
    try {
      const e = eventOf(r);
      if (e === undefined) return;
      if (isControl(e)) msg = parseControl(e);
      else if (isJavaRecord(e)) msg = { type: "java", ...parseJava(e) };
      else {
        log.warn("Skipped record {offset} on partition 0: addressed to {to}", {
          offset: r.offset,
          to: String(e.to).slice(0, 80),
        });
        return;
      }
    } catch (e) {
      log.warn("Skipped record {offset} on partition 0: {message}", {
        offset: r.offset,
        message: (e as Error).message,
      });
      return;
    }
    const b = this.#bootstrap;
    if (b !== undefined) {
      if (msg.type === "snapshot" && msg.for === this.platform.origin) {
        // Parts of one monitor's answer (each running monitor answers), complete once all came.
        const key = `${msg.monitor} ${msg.asOf}`;
        const got = b.parts.get(key) ?? new Map<number, TableSnapshot>();
        b.parts.set(key, got.set(msg.part, msg.table));
        if (got.size < msg.parts) return;
        const all = [...got.values()];
        return this.#finishBootstrap({
          connections: all.flatMap((t) => t.connections),
          departed: all.flatMap((t) => t.departed ?? []),
        }, BigInt(msg.asOf));
      }
      if (msg.type === "alive") this.#onAlive(msg);
      else b.buffer.push([BigInt(r.offset), msg]);
      return;
    }
    this.#handle(msg, r.offset);
  }

  // ---- Java monitors on the same channel (java_monitor.ts, docs/presence.md) ----

  /** The Java monitors heard within the last minute. */
  javaMonitors(): string[] {
    return [...this.#monitors].filter(([, m]) => m.java).map(([origin]) => origin);
  }

  // Whether a Java monitor is heard (asked per publish: no list is built).
  #mixed(): boolean {
    for (const m of this.#monitors.values()) if (m.java) return true;
    return false;
  }

  #publishJava(messages: JavaMessage[]): Promise<void> {
    return this.#publish(messages.map((java) => ({ type: "java", java, ours: true })));
  }

  // While Java monitors listen, this monitor's records and releases go out in their form too.
  #withJavaTwin(m: MonitorMessage): MonitorMessage[] {
    const me = this.platform.origin;
    let java: JavaMessage | undefined;
    if (m.type === "put" && m.info.monitor === me) {
      const topic = m.info.topic ?? this.#table.connection(m.info.origin)?.topic;
      java = { type: "put", origin: m.info.origin, info: javaInfo({ ...m.info, topic }) };
    } else if (m.type === "del" && m.monitor === me) {
      java = { type: "del", origin: m.origin };
    }
    return java === undefined ? [m] : [m, { type: "java", java, ours: true }];
  }

  // The applications that TypeScript monitors hold, in the Java form (Java monitors answer for
  // their own).
  #javaPuts(): JavaMessage {
    const apps: Record<string, Record<string, unknown>> = {};
    for (const c of this.#table.connections()) {
      if (!this.#monitors.get(c.monitor)?.java) apps[c.origin] = javaInfo(c);
    }
    return { type: "puts", origin: this.platform.origin, apps };
  }

  #applyTable(msg: ControlMessage): Effect[] {
    const effects = this.#table.apply(msg);
    this.#onEffects(effects);
    return effects;
  }

  #onJava(m: JavaMessage, ours: boolean): void {
    const me = this.platform.origin;
    const now = Date.now();
    // The lock's messages count whoever wrote them: TypeScript monitors bid too.
    switch (m.type) {
      case "rsvp":
        this.#bids.bid(m.monitor, m.time, now);
        if (m.monitor === me) this.#bidInFlight = false;
        return this.#rsvpRound();
      case "rsvp_complete":
        this.#bids.remove(m.monitor);
        if (m.monitor === me) this.#roundAt = 0;
        return this.#rsvpRound();
      case "confirm_topic":
        this.#bids.touch(m.monitor, now);
        break;
    }
    if (ours) return; // a TypeScript monitor's copy of what its own messages say
    const writer = writerOf(m);
    if (writer !== undefined && writer !== me) this.#javaHeard(writer, now);
    switch (m.type) {
      case "init": // a Java monitor started: it learns of this one at once
        this.#publishJava([{ type: "monitor_alive", origin: me, apps: this.#origins() }])
          .catch(() => {});
        return;
      case "download":
        if (this.#ready) this.#publishJava([this.#javaPuts()]).catch(() => {});
        return;
      case "put":
        return this.#applyJava(m.origin, m.info, now);
      case "puts":
        for (const [origin, info] of Object.entries(m.apps)) this.#applyJava(origin, info, now);
        return;
      case "del": {
        // Only a record that a Java monitor holds: its session closed there.
        const c = this.#table.connection(m.origin);
        if (c === undefined || !this.#monitors.get(c.monitor)?.java) return;
        const reason = "websocket closed (Java monitor)";
        this.#applyTable({
          type: "del",
          origin: c.origin,
          session: c.session,
          monitor: c.monitor,
          reason,
        });
        return this.#dashboard.changed();
      }
      case "confirm_topic":
        if (this.#applyTable({ ...m, type: "assign" }).length) this.#dashboard.changed();
        return;
    }
  }

  // A Java monitor's record of one of its applications (a record of an application that a
  // TypeScript monitor holds is that monitor's to say).
  #applyJava(origin: string, info: Record<string, unknown>, now: number): void {
    let c: ConnectionInfo;
    try {
      c = fromJavaInfo(origin, info, now);
    } catch (e) {
      log.warn("Skipped a Java monitor's record of {origin}: {message}", {
        origin: origin.slice(0, 80),
        message: (e as Error).message,
      });
      return;
    }
    if (!this.#monitors.get(c.monitor)?.java) return;
    const effects = this.#applyTable({
      type: "put",
      info: { ...c, topic: undefined },
      foreign: true,
    });
    if (c.topic !== undefined) {
      effects.push(
        ...this.#applyTable({ type: "assign", origin, topic: c.topic, monitor: c.monitor }),
      );
    }
    if (effects.length) this.#dashboard.changed();
  }

  #javaHeard(origin: string, now: number): void {
    const known = this.#monitors.get(origin);
    if (known !== undefined && !known.java) return; // a TypeScript monitor
    this.#monitors.set(origin, { lastSeen: now, version: "Java", started: "", java: true });
    if (known !== undefined) return;
    this.#dashboard.changed();
    log.info(
      "Registered monitor (peer) {origin}, a Java monitor: leases are given under its " +
        "RSVP lock from now on",
      { origin },
    );
    this.#lastJavaAlive = now;
    this.#publishJava([
      { type: "monitor_alive", origin: this.platform.origin, apps: this.#origins() },
      this.#javaPuts(),
      { type: "download", origin: this.platform.origin },
    ]).catch(() => {});
  }

  #origins(): string[] {
    return this.#table.connections().map((c) => c.origin);
  }

  // The Java monitors' lock: bid while sessions wait; with the rights, claim for all of them
  // between rsvp_start and rsvp_complete, each claim with its confirm_topic for the Java monitors.
  #rsvpRound(): void {
    if (!this.#ready || this.#stopping) return;
    for (const s of this.#waiting) {
      if (s.closing || this.#sessions.of(s.origin) !== s) this.#waiting.delete(s);
    }
    if (this.#waiting.size === 0) return;
    const me = this.platform.origin;
    const waiting = [...this.#waiting];
    if (!this.#mixed()) { // the Java monitors went: no lock to wait for
      this.#waiting.clear();
      const claims = waiting.map((s) => this.#nextClaim(s)).filter((c) => c !== undefined);
      this.#publish(claims).catch(() => {});
      return;
    }
    const now = Date.now();
    // A bid is refreshed while it waits behind others: one silent for 20 s is dropped.
    const bidding = this.#bids.has(me) || (this.#bidInFlight && now - this.#bidSentAt < 10_000);
    const stale = this.#bids.has(me) && this.#bids.size > 1 && now - this.#bidSentAt > 10_000;
    if (!bidding || stale) {
      this.#bidSentAt = now;
      this.#bidInFlight = true;
      this.#publishJava([{ type: "rsvp", monitor: me, time: now }])
        .catch(() => (this.#bidInFlight = false));
      return;
    }
    if (now - this.#roundAt < 10_000 || !this.#bids.rightsOf(me, now)) return;
    this.#roundAt = now;
    this.#waiting.clear();
    const out: MonitorMessage[] = [{
      type: "java",
      ours: true,
      java: { type: "rsvp_start", monitor: me },
    }];
    for (const s of waiting) {
      const claim = this.#nextClaim(s);
      if (claim === undefined) continue;
      // A reconnecting origin keeps the lease it has.
      const topic = this.#table.connection(s.origin)?.topic ?? claim.topic;
      const confirm: JavaMessage = { type: "confirm_topic", monitor: me, topic, origin: s.origin };
      out.push(claim, { type: "java", ours: true, java: confirm });
    }
    out.push({ type: "java", ours: true, java: { type: "rsvp_complete", monitor: me } });
    this.#publish(out).catch(() => (this.#roundAt = 0));
  }

  #javaTick(now: number): void {
    if (this.#mixed() && now - this.#lastJavaAlive >= JAVA_ALIVE_INTERVAL_MS) {
      this.#lastJavaAlive = now;
      this.#publishJava([{
        type: "monitor_alive",
        origin: this.platform.origin,
        apps: this.#origins(),
      }])
        .catch(() => {});
    }
    this.#rsvpRound();
  }

  #finishBootstrap(
    table: TableSnapshot | undefined,
    asOf: bigint = -1n,
  ): void {
    const b = this.#bootstrap;
    if (b === undefined) return;
    this.#bootstrap = undefined;
    if (table !== undefined) {
      this.#table.load(table);
      log.info("Loaded {n} connection(s) from a peer monitor", { n: table.connections.length });
    }
    for (const [offset, msg] of b.buffer) if (offset > asOf) this.#handle(msg, String(offset));
    b.done();
  }

  #handle(msg: MonitorMessage, offset: string): void {
    switch (msg.type) {
      case "alive":
        return this.#onAlive(msg);
      case "download":
        if (msg.monitor !== this.platform.origin) this.#stats.shareAllRoutes();
        if (msg.monitor !== this.platform.origin && this.#ready) {
          const parts = snapshotParts(this.#table.snapshot());
          this.#publish(parts.map((table, i) => ({
            type: "snapshot" as const,
            monitor: this.platform.origin,
            for: msg.monitor,
            asOf: offset,
            table,
            part: i + 1,
            parts: parts.length,
          }))).catch(() => {});
        }
        return;
      case "snapshot":
        return; // for another monitor
      case "handover":
        this.#onHandover(msg.monitor);
        break;
      case "stats":
        this.#onStats(msg.monitor, msg.apps);
        return this.#dashboard.changed(FIGURES_DELAY_MS);
      case "java":
        return this.#onJava(msg.java, msg.ours);
      default: {
        const effects = this.#table.apply(msg);
        this.#onEffects(effects);
        // A keep-alive's put changes nothing the dashboard shows: only effects do.
        if (effects.length === 0 && msg.type === "put") return;
      }
    }
    this.#dashboard.changed();
  }

  // ---- what the applications report, for the dashboard ----

  // A report of one of this monitor's sessions; an origin not in the table (yet) is ignored,
  // so what is kept is bounded by the table.
  #onReport(origin: string, report: AppReport): void {
    if (this.#table.connection(origin)?.monitor !== this.platform.origin) return;
    this.#stats.own(origin, report);
    this.#dashboard.changed(FIGURES_DELAY_MS);
  }

  // Another monitor's share: only what an application's own monitor says of it is taken.
  #onStats(monitor: string, apps: { origin: string; report: AppReport }[]): void {
    if (monitor === this.platform.origin) return;
    for (const { origin, report } of apps) {
      if (this.#table.connection(origin)?.monitor === monitor) this.#stats.update(origin, report);
    }
  }

  // What this monitor's sessions reported, to the other monitors: routes only when they changed
  // (or a monitor started), in records of at most 100 applications and about 256 KiB, well
  // under Kafka's 1 MiB (a report holds at most 16 K characters of route names).
  #shareStats(now: number): MonitorMessage[] {
    this.#lastShare = now;
    const apps = this.#stats.takeShare(
      this.#sessions.joined().map((s) => s.origin),
      new Set(this.#table.connections().map((c) => c.origin)),
    );
    const out: MonitorMessage[] = [];
    let batch: typeof apps = [], bytes = 0;
    for (const app of apps) {
      const size = 200 + (app.report.routes ?? []).reduce((n, r) => n + 3 * r.length + 2, 0);
      if (batch.length === 100 || (batch.length > 0 && bytes + size > SHARE_BYTES)) {
        out.push({ type: "stats", monitor: this.platform.origin, apps: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(app);
      bytes += size;
    }
    if (batch.length > 0) out.push({ type: "stats", monitor: this.platform.origin, apps: batch });
    return out;
  }

  #onAlive(msg: { monitor: string; version: string; started: string }): void {
    const known = this.#monitors.get(msg.monitor);
    const now = Date.now();
    if (msg.monitor === this.platform.origin && known !== undefined && !this.#hearsItself(now)) {
      // Our own path through Kafka is back: the peers were as unheard as we were, so each gets
      // a whole silence window from now to speak before it may be expired.
      log.info("Hearing this monitor's own alive messages again after {s} s", {
        s: Math.round((now - known.lastSeen) / 1000),
      });
      for (const m of this.#monitors.values()) m.lastSeen = Math.max(m.lastSeen, now);
    }
    this.#monitors.set(msg.monitor, {
      lastSeen: now,
      version: msg.version,
      started: msg.started,
    });
    if (known === undefined) {
      this.#dashboard.changed();
      log.info(
        msg.monitor === this.platform.origin
          ? "Registered monitor (me) {origin}"
          : "Registered monitor (peer) {origin}",
        { origin: msg.monitor },
      );
    }
  }

  // A monitor stopped gracefully: its applications reconnect elsewhere, keeping their leases;
  // what it still holds after the grace period is released (by whichever monitor is first:
  // the second release finds nothing left).
  #onHandover(monitor: string): void {
    if (monitor === this.platform.origin) return;
    this.#monitors.delete(monitor);
    const held = this.#table.connections().filter((c) => c.monitor === monitor).length;
    log.info("Monitor {origin} is stopping: its {n} session(s) may reconnect here", {
      origin: monitor,
      n: held,
    });
    this.#handedOver.set(monitor, Date.now() + this.settings.handoverGrace * 1000);
  }

  #onEffects(effects: Effect[]): void {
    const me = this.platform.origin;
    for (const fx of effects) {
      switch (fx.kind) {
        case "granted": {
          const c = this.#table.connection(fx.origin);
          log.info("{topic} assigned to {origin}, {name}, {version}", {
            topic: fx.topic,
            origin: fx.origin,
            name: c?.name,
            version: c?.version,
          });
          this.#record("join", fx.origin, c, fx.topic);
          if (fx.monitor !== me) break;
          this.#claiming.delete(fx.claimed);
          const s = this.#sessions.of(fx.origin);
          if (s?.id === fx.session && c) this.#sendReady(s, fx.topic);
          break;
        }
        case "rejected": {
          if (fx.monitor !== me) break;
          this.#claiming.delete(fx.topic);
          const s = this.#sessions.of(fx.origin);
          if (s?.id !== fx.session || s.closing) break;
          log.info("Claim of {topic} for {origin} lost: {why}; trying another", {
            topic: fx.topic,
            origin: fx.origin,
            why: fx.why,
          });
          const claim = this.#claimFor(s);
          if (claim?.length) this.#publish(claim).catch(() => {});
          break;
        }
        case "released":
          log.info("{topic} released by {origin}, {name}, {version} ({reason})", {
            topic: fx.topic,
            origin: fx.info.origin,
            name: fx.info.name,
            version: fx.info.version,
            reason: fx.reason,
          });
          break;
        case "left": {
          this.#record("leave", fx.info.origin, fx.info, fx.reason);
          if (fx.by === me) this.#announceLeave(fx.info);
          const s = this.#sessions.of(fx.info.origin);
          // Our own session lost its record (another monitor expired us): let it reconnect.
          if (fx.info.monitor === me && s?.id === fx.info.session) {
            this.#sessions.drop(s, CLOSE.TRY_AGAIN, `Lease lost: ${fx.reason}`);
          }
          break;
        }
        case "conflict":
          log.warn("{origin} says it holds {topic}, which {owner} holds here: not recorded", {
            origin: fx.info.origin,
            topic: fx.info.topic,
            owner: fx.owner ?? "nobody (not a virtual topic)",
          });
          break;
        case "impostor": {
          log.warn("Refused {origin} through monitor {monitor}: it belongs to another instance", {
            origin: fx.info.origin,
            monitor: fx.info.monitor,
          });
          const s = this.#sessions.of(fx.info.origin);
          if (fx.info.monitor === me && s?.id === fx.info.session) {
            this.#sessions.drop(s, NOT_OWNER, `Origin ${s.origin} belongs to another instance`);
          }
          break;
        }
        case "superseded": {
          const s = this.#sessions.of(fx.old.origin);
          if (fx.old.monitor === me && s?.id === fx.old.session) {
            this.#sessions.drop(s, CLOSE.TRY_AGAIN, `Reconnected through monitor ${fx.by.monitor}`);
          }
          break;
        }
      }
    }
  }

  #record(
    kind: "join" | "leave",
    origin: string,
    c: ConnectionInfo | undefined,
    detail: string,
  ): void {
    this.#dashboard.record({
      at: new Date().toISOString(),
      kind,
      origin,
      name: c?.name ?? "",
      version: c?.version ?? "",
      detail,
    });
  }

  // One look (or creation) per physical topic at a time, and its answer for a second after: a
  // burst of leases in one topic asks Kafka once, not once per lease (a look is a metadata
  // request for every topic; 288 of them made 288 leases take two seconds). A topic that goes
  // missing afterwards is found by #checkTopics.
  #prepare(physical: string): Promise<number> {
    const known = this.#preparing.get(physical);
    if (known !== undefined && (known.at === 0 || Date.now() - known.at < 1000)) return known.p;
    const entry = {
      p: this.#kafka.ensureTopic(physical, this.settings.partitionsPerTopic),
      at: 0,
    };
    this.#preparing.set(physical, entry);
    entry.p.then(() => (entry.at = Date.now()), () => {
      if (this.#preparing.get(physical) === entry) this.#preparing.delete(physical);
    });
    return entry.p;
  }

  // The app topics being looked for or created now: not missing, only not there yet.
  #inPreparation(): Set<string> {
    return new Set([...this.#preparing].filter(([, e]) => e.at === 0).map(([t]) => t));
  }

  #sendReady(s: Session, topic: string): void {
    const [physical, partition] = splitVirtualTopic(topic);
    this.#prepare(physical).then((n) => {
      if (n <= partition) throw new Error(`Insufficient partitions in ${physical} (${n})`);
      if (s.closing) return;
      // The app announces its own join once it reads its partitions; as in the Java original,
      // the monitor writes only leaves to the group.
      s.socket.send(readyEnvelope(topic, this.platform.version).toBytes());
    }).catch((e) => {
      // The documented reason for too few partitions; Kafka's own errors stay in the log.
      const message = (e as Error).message;
      const documented = message.startsWith("Insufficient");
      if (!documented) log.error("Cannot prepare {topic}: {message}", { topic: physical, message });
      this.#sessions.drop(s, CLOSE.TRY_AGAIN, documented ? message : "Kafka unavailable");
    });
  }

  // A leave, to the app's closed user group (service.monitor partition = group).
  #announceLeave(c: ConnectionInfo): void {
    const record: OutRecord = eventRecord(
      this.settings.monitorTopic,
      c.group,
      `monitor-${c.group}`,
      leaveEnvelope(c.group, c.origin),
    );
    this.#kafka.send([record]).catch((e) =>
      log.error("Cannot announce the leave of {origin}: {message}", {
        origin: c.origin,
        message: (e as Error).message,
      })
    );
  }

  // ---- the mesh's topics ----

  // service.monitor, and the physical topic of every lease, with the partitions they need.
  #neededTopics(): Map<string, number> {
    const s = this.settings;
    const need = new Map([[s.monitorTopic, s.maxGroups + 1]]);
    for (const [virtual] of this.#table.leases()) {
      need.set(splitVirtualTopic(virtual)[0], s.partitionsPerTopic);
    }
    return need;
  }

  // Checked every second. A topic that is missing (the broker was re-formatted, or someone
  // deleted it) is created again, and one with fewer partitions than its leases need (created
  // by a broker's automatic creation, say) is grown; meanwhile `/health` is DOWN, saying why.
  async #checkTopics(): Promise<void> {
    if (this.#checkingTopics) return;
    this.#checkingTopics = true;
    try {
      // What is needed and being created is taken before the metadata: a lease granted, or a
      // creation finished, while it is on its way must not look missing.
      const need = [...this.#neededTopics()];
      const creating = this.#inPreparation();
      const have = await this.#kafka.topicPartitions();
      const still = this.#inPreparation();
      const wrong = need.filter(([topic, n]) =>
        !((have.get(topic) ?? 0) >= n) && !creating.has(topic) && !still.has(topic)
      );
      if (wrong.length === 0) {
        if (this.#topicProblem !== undefined) log.info("The mesh's topics are in place again");
        this.#topicProblem = undefined;
        return;
      }
      const problem = "Kafka topics are not as the mesh needs them: " +
        wrong.map(([topic, n]) =>
          have.has(topic)
            ? `${topic} has ${have.get(topic)} partitions, needs ${n}`
            : `${topic} is missing`
        ).join("; ");
      if (problem !== this.#topicProblem) log.warn("{problem}: repairing", { problem });
      this.#topicProblem = problem;
      this.#resync = true;
      for (const [topic, n] of wrong) {
        if (have.has(topic)) await this.#kafka.createPartitions(topic, n);
        else await this.#kafka.ensureTopic(topic, n);
      }
    } catch (e) {
      // Kafka away: the health check says so already.
      log.debug("Cannot check the mesh's topics: {message}", { message: (e as Error).message });
    } finally {
      this.#checkingTopics = false;
    }
  }

  // The connections of this monitor's open sessions, with their leases as the table has them.
  #heldMessage(): MonitorMessage {
    const connections = this.#sessions.joined().map((s) => {
      const c = this.#table.connection(s.origin);
      return c?.session === s.id ? c : s.info!;
    });
    return { type: "held", monitor: this.platform.origin, connections };
  }

  // ---- housekeeping, once a second ----

  // Whether this monitor's own alive messages come back through service.monitor in time (two
  // intervals and a second): the proof that what it hears of its peers is current.
  #hearsItself(now: number): boolean {
    const me = this.#monitors.get(this.platform.origin);
    return me !== undefined && now - me.lastSeen < (2 * this.settings.aliveInterval + 1) * 1000;
  }

  #tick(): void {
    const now = Date.now();
    const s = this.settings;
    this.#sessions.tick(now);
    this.#checkTopics();
    const out: MonitorMessage[] = [];
    if (!this.#kafka.available) this.#resync = true;
    if (this.#resync && this.#kafka.available && this.#topicProblem === undefined) {
      this.#resync = false;
      this.#publish([this.#aliveMessage(), this.#heldMessage()]).catch(() => (this.#resync = true));
    }
    if (now - this.#lastAlive >= s.aliveInterval * 1000) out.push(this.#aliveMessage());
    if (now - this.#lastShare >= STATS_INTERVAL_MS) out.push(...this.#shareStats(now));
    for (const [origin, at] of this.#handedOver) {
      if (now < at) continue;
      this.#handedOver.delete(origin);
      if (this.#table.connections().some((c) => c.monitor === origin)) {
        out.push({ type: "release_monitor", dead: origin, monitor: this.platform.origin });
      }
    }
    // A monitor that does not hear itself cannot tell a dead peer from its own outage (Kafka
    // away, silent, or its reader stuck): it expires nobody until it hears itself again.
    const judging = this.#kafka.available && this.#hearsItself(now);
    for (const [origin, m] of this.#monitors) {
      const silence = m.java ? JAVA_MONITOR_SILENCE_MS : 3 * s.aliveInterval * 1000;
      if (!judging || origin === this.platform.origin || now - m.lastSeen < silence) continue;
      this.#monitors.delete(origin);
      this.#dashboard.changed();
      log.warn("Monitor {origin} expired: no alive message for {s} s", {
        origin,
        s: Math.round((now - m.lastSeen) / 1000),
      });
      if (this.#table.connections().some((c) => c.monitor === origin)) {
        out.push({ type: "release_monitor", dead: origin, monitor: this.platform.origin });
      }
    }
    this.#publish(out).catch(() => {});
    this.#javaTick(now);
  }
}
