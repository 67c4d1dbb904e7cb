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
import { everyTick } from "../bus/_on_time.ts";
import type { TickTimer } from "../bus/_on_time.ts";
import type { Platform } from "../bus/platform.ts";
import { serve as serveHere } from "#runtime";
import { serverLimits, serverTls } from "../runtime/server.ts";
import type { RunningServer, ServeFunction } from "../runtime/server.ts";
import type { InRecord, KafkaClient, OutRecord } from "../kafka/client.ts";
import { kafkaClient } from "../kafka/factory.ts";
import { describeKafka } from "../kafka/properties.ts";
import { explainKafkaError } from "../kafka/startup.ts";
import type { OAuthBearerProvider } from "../kafka/properties.ts";
import { eventOf, eventRecord } from "../kafka/records.ts";
import { parseReport } from "./app_stats.ts";
import { MonitorDashboard } from "./dashboard.ts";
import { HttpMetrics } from "../actuator/http_metrics.ts";
import { DASHBOARD_LIVE, monitorHandler, tokenAuthorizer } from "./http.ts";
import { isDashboardAsset } from "./dashboard_page.ts";
import { isJavaRecord, JAVA_TOPIC_EXPIRY_MS, parseJava } from "./java_monitor.ts";
import { PeerMonitors } from "./peer_monitors.ts";
import { Bootstrap, JAVA_ANSWER_WAIT_MS } from "./bootstrap.ts";
import { JavaPeers } from "./java_peers.ts";
import { Leasing } from "./leasing.ts";
import { MeshTopics } from "./topics.ts";
import { KafkaReachability } from "./reachability.ts";
import { monitorInfo, monitorMetrics } from "./info.ts";
import { LeaseTable, virtualTopics } from "./lease_table.ts";
import type { ConnectionInfo, ControlMessage, Effect, TableSnapshot } from "./lease_table.ts";
import { controlEnvelope, isControl, parseControl, snapshotParts } from "./control.ts";
import { CLOSE } from "../protocol/presence.ts";
import { leaveMessage } from "../protocol/registry.ts";
import type { MonitorMessage } from "./control.ts";
import type { DashboardState, DashboardView } from "./dashboard_state.ts";
import { MAX_FRAME, PRESENCE_PATH, Sessions } from "./sessions.ts";
import { monitorSettings } from "./settings.ts";
import type { MonitorSettings } from "./settings.ts";
import { MESH_PROTOCOL, meshTokens, NOT_OWNER, tokenChecker } from "../protocol/credentials.ts";
import type { TlsFiles } from "../runtime/server.ts";

const log = logger("presence");

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
  readonly #reachability: KafkaReachability;
  /** The HTTP endpoints' figures, for /metrics: the dashboard's paths are labels of their own. */
  readonly #http = new HttpMetrics((req) => {
    const path = new URL(req.url).pathname;
    return isDashboardAsset(path) || DASHBOARD_LIVE.includes(path) ? path : undefined;
  });
  readonly #table: LeaseTable;
  readonly #sessions: Sessions;
  readonly #leasing: Leasing;
  readonly #monitors: PeerMonitors;
  #server: RunningServer | undefined;
  #timer: TickTimer | undefined;
  #ready = false;
  #stopping = false;
  /** While starting: what is read before the table is in sync (see bootstrap.ts). */
  #bootstrap: {
    reading: Bootstrap;
    done: () => void;
    /** The first complete table from a running TypeScript monitor. */
    snapshot?: { table: TableSnapshot; asOf: bigint };
    /** Waited long enough for a table, and for the Java monitors' answers. */
    tableWaited?: boolean;
    javaWaited?: boolean;
  } | undefined;
  #lastAlive = 0;
  readonly #topics: MeshTopics;
  /** Kafka was away or lost topics: messages may be lost, so say what this monitor holds. */
  #resync = false;
  /** Which of `mesh.tokens` a client offered (its position), -1 for none; unset without. */
  readonly #tokenOf: ((protocols: readonly string[]) => number) | undefined;
  /** Websockets refused for their credential (4401), for /metrics. */
  #unauthorized = 0;
  /** The dashboard, with what the mesh's applications reported. */
  readonly #dashboard: MonitorDashboard;
  /** The Java monitors heard, and their lease lock. */
  readonly #java: JavaPeers;

  /**
   * Creates a monitor; {@link PresenceMonitor.start} starts it.
   *
   * @param platform Its identity and configuration.
   * @param options The server adapter and Kafka client, when not the defaults.
   */
  constructor(platform: Platform, options: PresenceMonitorOptions = {}) {
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
      claim: (session) => this.#leasing.claimFor(session),
      ownerOf: (origin) => this.#table.ownerOf(origin, Date.now()),
      credential: (protocols) => {
        const i = this.#tokenOf?.(protocols) ?? -1;
        return i < 0 ? undefined : `token ${i + 1}`;
      },
      report: (session, body) => {
        const report = parseReport(body);
        this.#dashboard.report(session.origin, report);
        if (session.info !== undefined) this.#reachability.report(session.info, report.kafka);
      },
      connected: (origin) => this.#table.connection(origin) !== undefined,
    });
    this.#monitors = new PeerMonitors(
      platform.origin,
      s.aliveInterval,
      s.handoverGrace,
      () => this.#dashboard.changed(),
    );
    this.#dashboard = new MonitorDashboard(platform, this.#monitors.known, this.#table, {
      kafka: () => ({ up: this.#kafka.available, brokers: this.#kafka.brokers.join(",") }),
      aliveMs: this.settings.aliveInterval * 1000,
      addressOf: (origin) => this.#sessions.of(origin)?.socket.remoteAddress,
    });
    this.#reachability = new KafkaReachability(this.#kafka, s.monitorTopic);
    this.#topics = new MeshTopics(
      this.#kafka,
      s,
      () => this.#table.leases().map(([vt]) => vt),
      this.#table.all,
    );
    this.#java = new JavaPeers({
      me: platform.origin,
      table: this.#table,
      monitors: this.#monitors.known,
      sessions: this.#sessions,
      ready: () => this.#ready,
      stopping: () => this.#stopping,
      publish: (messages) => this.#publish(messages),
      nextClaim: (session) => this.#leasing.nextClaim(session),
      apply: (msg) => this.#applyTable(msg),
      changed: () => this.#dashboard.changed(),
    });
    this.#leasing = new Leasing({
      me: platform.origin,
      version: platform.version,
      table: this.#table,
      sessions: this.#sessions,
      prepare: (physical, partition, waiting) => this.#topics.prepare(physical, partition, waiting),
      mustWait: () => this.#java.mixed,
      wait: (session) => this.#java.wait(session),
      reserved: (topic, origin) => this.#java.reserved(topic, origin),
    });
    const tokens = meshTokens(platform.config);
    if (tokens.length) this.#tokenOf = tokenChecker(tokens);
    platform.addMetricSource(() => this.#http.metrics());
    platform.addMetricSource(() =>
      monitorMetrics(this.#table, this.#sessions, this.#monitors.known.size, this.#unauthorized, {
        kafkaUp: this.#kafka.available,
        joins: this.#dashboard.joins,
        leaves: this.#dashboard.leaves,
      })
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
    return new Map([...this.#monitors.known].map(([k, v]) => [k, v.lastSeen]));
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
  dashboardStream(client?: string, view?: DashboardView): Response {
    return this.#dashboard.stream(client, view);
  }

  /** The dashboard's state now, as `GET /dashboard/state` answers it. */
  dashboardState(view?: DashboardView): DashboardState {
    return this.#dashboard.state(view);
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
      fetch: this.#http.measure(handler),
      limits: serverLimits(this.platform.config, {
        maxConnections: s.maxConnections + s.maxPending + 100, // sessions, pending ones, HTTP
        maxBodyBytes: 1024 * 1024,
        maxFrameBytes: MAX_FRAME,
      }),
      handlers: this.#sessions.handlers,
      pingTimeoutMs: s.hungTimeout * 1000,
      tls: this.#tls,
      subprotocol: MESH_PROTOCOL,
      authorize: tokenAuthorizer(this.#tokenOf, () => this.#unauthorized++),
    });
    log.info("Websocket server running on port {port}{tls}", {
      port: this.#server.port,
      tls: this.#tls ? " (TLS: wss and https)" : "",
    });
    log.info("Kafka: {kafka}", { kafka: describeKafka(s.kafka) });
    // The first call to Kafka shows whether it accepts this monitor at all; say why not in
    // words that name the setting.
    const topics = await this.#kafka.topicPartitions().catch((e) => {
      throw new Error(explainKafkaError(e, s.kafka), { cause: e });
    });
    await this.#topics.prepareMonitorTopic(topics, this.#table.all);
    await this.#topics.prepareAhead();
    const synced = new Promise<void>((done) => (
      this.#bootstrap = { reading: new Bootstrap(this.platform.origin), done }
    ));
    // From a minute back: the partitions the Java monitors still hold (see JavaTopics).
    const consumer = this.#kafka.consumePartition(s.monitorTopic, 0, (r) => this.#onRecord(r), {
      since: Date.now() - JAVA_TOPIC_EXPIRY_MS - 5_000,
    });
    await consumer.ready;
    log.info("{topic}, partition 0 ready", { topic: s.monitorTopic });
    // Kafka answered already: a write that fails now (a connection dropped as the cluster
    // settles, under load) is tried again a few times before the start gives up.
    const me = this.platform.origin;
    for (let attempt = 1;; attempt++) {
      try {
        await this.#publish([
          { type: "download", monitor: me },
          this.#aliveMessage(),
          { type: "java", java: { type: "init", origin: me }, ours: true },
          { type: "java", java: { type: "download", origin: me }, ours: true },
        ]);
        break;
      } catch (e) {
        if (attempt >= 4 || this.#stopping) throw e;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
    // A running monitor answers `download` with a snapshot within milliseconds; with no
    // answer in time (2 s) this monitor is the first and starts from an empty table. A Java
    // monitor that died lately (heard in the history, silent since) is waited for 5 s at most.
    const waited = (what: "tableWaited" | "javaWaited") => () => {
      if (this.#bootstrap !== undefined) this.#bootstrap[what] = true;
      this.#maybeSynced();
    };
    const timers = [
      setTimeout(waited("tableWaited"), s.bootstrapWaitMs),
      setTimeout(waited("javaWaited"), JAVA_ANSWER_WAIT_MS),
    ];
    await synced;
    timers.forEach(clearTimeout);
    this.#timer = everyTick(1000, (now, onTime) => this.#tick(now, onTime));
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
    const served = this.#ready;
    this.#ready = false;
    clearInterval(this.#timer);
    // First the message, then the close: a monitor must know of the handover before the
    // applications reach it, or it could take their sessions for the old ones' leftovers. A
    // monitor that never became ready has nothing to hand over (and Kafka may be why).
    if (served && this.#kafka.available) {
      await this.#publish([{ type: "handover", monitor: this.platform.origin }]).catch(() => {});
    }
    this.#sessions.closeAll("monitor shutting down");
    this.#dashboard.close();
    await this.#server?.close().catch(() => {});
    await this.#kafka.close();
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
    if (this.#topics.problem !== undefined) throw new Error(this.#topics.problem);
    const took = await this.#kafka.loopback(this.settings.monitorTopic, 0);
    const topics = (await this.meshTopics()).length;
    return `Loopback test took ${took} ms; System contains ${topics} topics`;
  }

  /** The mesh's topics with their partition counts, sorted: `[["multiplex.0001", 32], ...]`. */
  meshTopics(): Promise<[string, number][]> {
    return this.#topics.list();
  }

  /** The `more` section of `/info`, shaped as in the guide. */
  async info(): Promise<Record<string, unknown>> {
    const topics = await this.meshTopics().catch(() => [] as [string, number][]);
    return monitorInfo(this.#table, topics, this.monitors());
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
    if (this.#java.mixed) messages = messages.flatMap((m) => this.#java.twin(m));
    const records = messages.map((m) =>
      eventRecord(this.settings.monitorTopic, 0, "monitor-0", controlEnvelope(m))
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
    const b = this.#bootstrap;
    try {
      const e = eventOf(r);
      if (e === undefined) return;
      // History (see bootstrap.ts): of the TypeScript monitors' messages, only the own download.
      const history = b !== undefined && !b.reading.started;
      if (history && isControl(e) && e.headers.monitor !== this.platform.origin) return;
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
    if (b === undefined) return this.#handle(msg, r.offset);
    if (!b.reading.started) {
      if (msg.type === "java") this.#java.history(msg.java, msg.ours, r.timestamp ?? Date.now());
      b.reading.take(msg, BigInt(r.offset));
      return this.#maybeSynced();
    }
    if (msg.type === "alive") return this.#monitors.alive(msg);
    b.snapshot ??= b.reading.take(msg, BigInt(r.offset));
    this.#maybeSynced();
  }

  // In sync once a table came (or none in time) and the Java monitors answered (or not in time).
  #maybeSynced(): void {
    const b = this.#bootstrap;
    if (b === undefined) return;
    if (b.snapshot === undefined && !b.tableWaited) return;
    if (!b.reading.javaAnswered && !b.javaWaited) return;
    this.#finishBootstrap(b.snapshot?.table, b.snapshot?.asOf);
  }

  /** The Java monitors heard within the last minute. */
  javaMonitors(): string[] {
    return this.#java.list();
  }

  #applyTable(msg: ControlMessage): Effect[] {
    const effects = this.#table.apply(msg);
    this.#onEffects(effects);
    return effects;
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
    for (const [offset, msg] of b.reading.after(asOf)) this.#handle(msg, String(offset));
    b.done();
  }

  #handle(msg: MonitorMessage, offset: string): void {
    switch (msg.type) {
      case "alive":
        return this.#monitors.alive(msg);
      case "download":
        if (msg.monitor !== this.platform.origin) this.#dashboard.shareAllRoutes();
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
        this.#monitors.handover(
          msg.monitor,
          this.#table.connections().filter((c) => c.monitor === msg.monitor).length,
        );
        break;
      case "stats":
        return this.#dashboard.shared(msg.monitor, msg.apps);
      case "java":
        return this.#java.onMessage(msg.java, msg.ours);
      default: {
        const effects = this.#table.apply(msg);
        this.#onEffects(effects);
        // A keep-alive's put changes nothing the dashboard shows: only effects do.
        if (effects.length === 0 && msg.type === "put") return;
      }
    }
    this.#dashboard.changed();
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
          this.#dashboard.record("join", fx.origin, c, fx.topic);
          if (fx.monitor === me) this.#leasing.granted(fx);
          break;
        }
        case "rejected": {
          const claim = fx.monitor === me ? this.#leasing.rejected(fx) : undefined;
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
          this.#dashboard.record("leave", fx.info.origin, fx.info, fx.reason);
          if (fx.by === me) this.#announceLeave(fx.info);
          this.#reachability.forget(fx.info.origin);
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

  // A leave, to the app's closed user group (service.monitor partition = group).
  #announceLeave(c: ConnectionInfo): void {
    const record: OutRecord = eventRecord(
      this.settings.monitorTopic,
      c.group,
      `monitor-${c.group}`,
      leaveMessage(c.group, c.origin),
    );
    this.#kafka.send([record]).catch((e) =>
      log.error("Cannot announce the leave of {origin}: {message}", {
        origin: c.origin,
        message: (e as Error).message,
      })
    );
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

  #tick(now: number, onTime: boolean): void {
    const s = this.settings;
    // Late (this process stood still): the sessions' messages are still unread.
    if (onTime) this.#sessions.tick(now);
    this.#topics.check();
    const out: MonitorMessage[] = [];
    // Kafka was away or lost topics: messages may be lost, so say what this monitor holds.
    if (!this.#kafka.available || this.#topics.problem !== undefined) this.#resync = true;
    if (this.#resync && this.#kafka.available && this.#topics.problem === undefined) {
      this.#resync = false;
      this.#publish([this.#aliveMessage(), this.#heldMessage()]).catch(() => (this.#resync = true));
    }
    if (now - this.#lastAlive >= s.aliveInterval * 1000) out.push(this.#aliveMessage());
    out.push(...this.#dashboard.share(now, this.#sessions.joined().map((s) => s.origin)));
    // A monitor that does not hear itself cannot tell a dead peer from its own outage (Kafka
    // away, silent, or its reader stuck): it expires nobody until it hears itself again.
    const judging = onTime && this.#kafka.available && this.#monitors.hearsItself(now);
    for (const origin of this.#monitors.gone(now, judging)) {
      if (this.#table.connections().some((c) => c.monitor === origin)) {
        out.push({ type: "release_monitor", dead: origin, monitor: this.platform.origin });
      }
    }
    this.#publish(out).catch(() => {});
    this.#java.tick(now);
  }
}
