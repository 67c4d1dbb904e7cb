/**
 * The presence monitor: the mesh's control plane. Application instances connect over a
 * websocket (`/ws/presence/<origin>`), get a virtual topic (one Kafka partition) leased to
 * them, and keep it while they send keep-alives. Joins and leaves are announced to each closed
 * user group's partition of `service.monitor`. Several monitors share one table over
 * `service.monitor` partition 0 (see `lease_table.ts` and docs/presence.md).
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import { logger } from "../bus/_log.ts";
import { randomHex32 } from "../bus/_ids.ts";
import { isOriginId } from "../bus/route.ts";
import type { Platform } from "../bus/platform.ts";
import { KafkaLink } from "../connector/kafka_link.ts";
import type { InRecord, OutRecord } from "../connector/kafka_link.ts";
import { eventOf, eventRecord, splitVirtualTopic } from "../connector/records.ts";
import { elapsedText, isoSeconds } from "../actuator/format.ts";
import { LeaseTable, virtualTopics } from "./lease_table.ts";
import type { ConnectionInfo, Effect } from "./lease_table.ts";
import {
  CLOSE,
  controlEnvelope,
  parseControl,
  readyEnvelope,
  registryEnvelope,
} from "./protocol.ts";
import type { MonitorMessage } from "./protocol.ts";
import { serverLimits } from "./socket.ts";
import type { PresenceSocket, RunningServer, ServeFunction } from "./socket.ts";

const log = logger("presence");

/** The websocket path prefix; the rest of the path is the app's origin id. */
export const PRESENCE_PATH = "/ws/presence/";
const MAX_FRAME = 65_536;
const PERSONALITIES = new Set(["APP", "REST", "RESOURCES"]);

interface Session {
  readonly id: string;
  readonly origin: string;
  readonly socket: PresenceSocket;
  readonly opened: number;
  lastSeen: number;
  seq: number;
  info?: ConnectionInfo;
  claimed: boolean;
  closing: boolean;
  /** Start of the current one-second window, and frames received in it. */
  windowStart: number;
  frames: number;
  /** When this session's last keep-alive was written to Kafka. */
  published: number;
}

interface KnownMonitor {
  lastSeen: number;
  started: string;
  version: string;
}

/** Settings of a monitor, read from its platform's configuration. */
export interface MonitorSettings {
  /** `server.port` (8080; 0 picks a free port). */
  port: number;
  /** `server.host` (0.0.0.0). */
  host: string;
  /** `bootstrap.servers` (127.0.0.1:9092). */
  brokers: string[];
  /** `monitor.topic` (service.monitor). */
  monitorTopic: string;
  /** `app.topic.prefix` (multiplex). */
  topicPrefix: string;
  /** `app.partitions.per.topic` (32). */
  partitionsPerTopic: number;
  /** `max.virtual.topics` (288), rounded down to a multiple of the partitions per topic. */
  maxVirtualTopics: number;
  /** `max.closed.user.groups` (10, kept within 3-30). */
  maxGroups: number;
  /** Seconds without a keep-alive before a session is closed and its lease released. */
  idleTimeout: number;
  /** `presence.handshake.timeout` (5): seconds a session may stay open without sending `info`. */
  handshakeTimeout: number;
  /**
   * `presence.max.pending` (100): sessions that have not sent `info` yet. A new connection over
   * it closes the oldest of them, so that idle connections cannot lock out real applications.
   */
  maxPending: number;
  /** `presence.max.frames.per.second` (20): a session sending more is closed (1008). */
  maxFramesPerSecond: number;
  /**
   * `presence.keepalive.publish.interval` (5): at most one keep-alive per session and interval
   * is written to `service.monitor`; the others only reset the idle timer.
   */
  keepAlivePublishInterval: number;
  /** Seconds between a monitor's `alive` messages; 3 missed ones mean it is gone. */
  aliveInterval: number;
  /** `presence.max.connections` (2000): websocket sessions one monitor accepts. */
  maxConnections: number;
}

/** Reads the monitor's settings (and their defaults) from `platform.config`. */
export function monitorSettings(platform: Platform): MonitorSettings {
  const c = platform.config;
  const partitionsPerTopic = c.getNumber("app.partitions.per.topic", 32);
  const maxVirtual = c.getNumber("max.virtual.topics", 288);
  return {
    port: c.getNumber("server.port", 8080),
    host: c.getString("server.host", "0.0.0.0"),
    brokers: c.getList("bootstrap.servers").length
      ? c.getList("bootstrap.servers")
      : ["127.0.0.1:9092"],
    monitorTopic: c.getString("monitor.topic", "service.monitor"),
    topicPrefix: c.getString("app.topic.prefix", "multiplex"),
    partitionsPerTopic,
    maxVirtualTopics: Math.floor(maxVirtual / partitionsPerTopic) * partitionsPerTopic,
    maxGroups: Math.min(30, Math.max(3, c.getNumber("max.closed.user.groups", 10))),
    idleTimeout: Math.max(1, c.getNumber("websocket.idle.timeout", 60)),
    handshakeTimeout: Math.max(1, c.getNumber("presence.handshake.timeout", 5)),
    maxPending: Math.max(1, c.getNumber("presence.max.pending", 100)),
    maxFramesPerSecond: Math.max(2, c.getNumber("presence.max.frames.per.second", 20)),
    keepAlivePublishInterval: Math.max(0, c.getNumber("presence.keepalive.publish.interval", 5)),
    aliveInterval: Math.max(1, c.getNumber("monitor.alive.interval", 5)),
    maxConnections: c.getNumber("presence.max.connections", 2000),
  };
}

/**
 * A presence monitor.
 *
 * @example
 * ```ts ignore
 * import { Platform } from "@minimesh/core";
 * import { PresenceMonitor } from "@minimesh/core/presence";
 * import { serve } from "#serve";
 * const monitor = new PresenceMonitor(new Platform(), serve);
 * await monitor.start();
 * ```
 */
export class PresenceMonitor {
  /** The monitor's own platform (origin id, name, version, configuration). */
  readonly platform: Platform;
  /** Its settings. */
  readonly settings: MonitorSettings;
  readonly #serve: ServeFunction;
  readonly #link: KafkaLink;
  readonly #table: LeaseTable;
  readonly #sessions = new Map<PresenceSocket, Session>();
  readonly #byOrigin = new Map<string, Session>();
  /** Sessions without `info` yet, oldest first. */
  readonly #pending = new Set<Session>();
  readonly #claiming = new Set<string>();
  readonly #monitors = new Map<string, KnownMonitor>();
  #server: RunningServer | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ready = false;
  #stopping = false;
  #bootstrap: { buffer: [bigint, MonitorMessage][]; done: () => void } | undefined;
  #lastAlive = 0;

  /**
   * Creates a monitor; {@link PresenceMonitor.start} starts it.
   *
   * @param platform Its identity and configuration.
   * @param serve The runtime's server adapter.
   */
  constructor(platform: Platform, serve: ServeFunction) {
    this.platform = platform;
    this.settings = monitorSettings(platform);
    this.#serve = serve;
    this.#link = new KafkaLink({
      brokers: this.settings.brokers,
      clientId: `monitor-${platform.origin.slice(8, 16)}`,
    });
    this.#table = new LeaseTable(
      virtualTopics(
        this.settings.topicPrefix,
        this.settings.partitionsPerTopic,
        this.settings.maxVirtualTopics,
      ),
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
   * Starts serving, joins the monitors' channel and, once in sync, accepts applications.
   *
   * @throws {Error} When `service.monitor` exists with too few partitions ("SYSTEM NOT
   * OPERATIONAL"), or Kafka cannot be reached.
   */
  async start(handler: (req: Request) => Response | Promise<Response>): Promise<void> {
    const s = this.settings;
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
      handlers: {
        open: (socket, path) => this.#onOpen(socket, path),
        message: (socket, data) => this.#onMessage(socket, data),
        close: (socket, code, reason) => this.#onClose(socket, code, reason),
      },
    });
    log.info("Websocket server running on port {port}", { port: this.#server.port });
    const need = s.maxGroups + 1;
    const have = await this.#link.ensureTopic(s.monitorTopic, need);
    if (have < need) {
      throw new Error(
        `SYSTEM NOT OPERATIONAL: ${s.monitorTopic} has ${have} partitions; ` +
          `max.closed.user.groups=${s.maxGroups} needs ${need}`,
      );
    }
    const synced = new Promise<void>((done) => (this.#bootstrap = { buffer: [], done }));
    const consumer = this.#link.consumePartition(s.monitorTopic, 0, (r) => this.#onRecord(r));
    await consumer.ready;
    log.info("{topic}, partition 0 ready", { topic: s.monitorTopic });
    await this.#publish([
      this.#aliveMessage(),
      { type: "download", monitor: this.platform.origin },
    ]);
    // A running monitor answers `download` with a snapshot within milliseconds; with no
    // answer in 2 s this monitor is the first and starts from an empty table.
    const timeout = setTimeout(() => this.#finishBootstrap(undefined), 2000);
    await synced;
    clearTimeout(timeout);
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#ready = true;
    log.info("Presence monitor {origin} ready: {n} connection(s) known", {
      origin: this.platform.origin,
      n: this.#table.connections().length,
    });
  }

  /** Closes every session (releasing its lease), stops consuming and serving. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#ready = false;
    clearInterval(this.#timer);
    const dels: MonitorMessage[] = [];
    for (const s of this.#sessions.values()) {
      if (s.info) dels.push(this.#del(s, "monitor shutting down"));
      s.closing = true;
      s.socket.close(CLOSE.GOING_AWAY, "Monitor shutting down");
    }
    await this.#publish(dels).catch(() => {});
    await this.#server?.close().catch(() => {});
    await this.#link.close();
  }

  /**
   * Kafka loopback through partition 0, and the number of mesh topics.
   *
   * @returns The message for `/health`, e.g. `Loopback test took 3 ms; System contains 2 topics`.
   * @throws {Error} When the loopback does not come back within 5 s or Kafka is unreachable.
   */
  async loopback(): Promise<string> {
    const took = await this.#link.loopback(this.settings.monitorTopic, 0);
    const topics = (await this.meshTopics()).length;
    return `Loopback test took ${took} ms; System contains ${topics} topics`;
  }

  /** The mesh's topics with their partition counts, sorted: `[["multiplex.0001", 32], ...]`. */
  async meshTopics(): Promise<[string, number][]> {
    const all = await this.#link.topicPartitions();
    const prefix = `${this.settings.topicPrefix}.`;
    return [...all].filter(([t]) => t === this.settings.monitorTopic || t.startsWith(prefix))
      .sort(([a], [b]) => a < b ? -1 : 1);
  }

  /** The `more` section of `/info`, shaped as in the guide. */
  async info(): Promise<Record<string, unknown>> {
    const topics = await this.meshTopics().catch(() => [] as [string, number][]);
    const now = Date.now();
    const connections = this.#table.connections()
      .sort((a, b) =>
        `${a.name}-${a.version}|${a.origin}` < `${b.name}-${b.version}|${b.origin}` ? -1 : 1
      )
      .map((c) => ({
        elapsed: elapsedText(now - Date.parse(c.created)),
        created: c.created,
        origin: c.origin,
        name: c.name,
        topic: c.topic ?? null,
        monitor: c.monitor,
        type: c.type,
        updated: c.updated,
        version: c.version,
        seq: c.seq,
        group: c.group,
        ...(c.instance ? { instance: c.instance } : {}),
      }));
    const leases = this.#table.leases();
    return {
      total: {
        topics: topics.length,
        virtual_topics: leases.length,
        connections: connections.length,
      },
      topics: topics.map(([t, n]) => `${t} (${n})`),
      virtual_topics: leases.map(([vt, origin]) => {
        const c = this.#table.connection(origin);
        return `${vt} -> ${origin}, ${c?.name} v${c?.version}`;
      }),
      connections,
      monitors: [...this.#monitors].sort(([a], [b]) => a < b ? -1 : 1)
        .map(([origin, m]) => `${origin} - ${isoSeconds(m.lastSeen)}`),
    };
  }

  // ---- websocket sessions ----

  #onOpen(socket: PresenceSocket, path: string): void {
    // An origin id is plain ASCII: anything percent-encoded is invalid, and never decoded.
    const token = path.slice(PRESENCE_PATH.length);
    const refuse = (code: number, reason: string) => {
      log.warn("Refused websocket {token}: {reason}", { token: token.slice(0, 80), reason });
      socket.close(code, reason);
    };
    if (!this.#ready) return refuse(CLOSE.TRY_AGAIN, "Starting up");
    if (!isOriginId(token)) {
      return refuse(CLOSE.POLICY, `Invalid origin id "${token.slice(0, 60)}"`);
    }
    if (this.#sessions.size - this.#pending.size >= this.settings.maxConnections) {
      return refuse(CLOSE.TRY_AGAIN, `Too many connections (${this.settings.maxConnections})`);
    }
    if (this.#byOrigin.has(token)) {
      return refuse(CLOSE.TRY_AGAIN, `Origin ${token} is already connected`);
    }
    const now = Date.now();
    const s: Session = {
      id: randomHex32(),
      origin: token,
      socket,
      opened: now,
      lastSeen: now,
      seq: 0,
      claimed: false,
      closing: false,
      windowStart: now,
      frames: 0,
      published: 0,
    };
    if (this.#pending.size >= this.settings.maxPending) {
      const oldest = this.#pending.values().next().value!;
      this.#pending.delete(oldest);
      this.#drop(oldest, CLOSE.TRY_AGAIN, "handshake not completed (too many pending sessions)");
    }
    this.#sessions.set(socket, s);
    this.#byOrigin.set(token, s);
    this.#pending.add(s);
    log.info("Member {origin} connected", { origin: token });
  }

  #drop(s: Session, code: number, reason: string): void {
    if (s.closing) return;
    s.closing = true;
    log.warn("Closing {origin} ({code}): {reason}", { origin: s.origin, code, reason });
    s.socket.close(code, reason);
  }

  #onMessage(socket: PresenceSocket, data: Uint8Array | string): void {
    const s = this.#sessions.get(socket);
    if (s === undefined || s.closing) return;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > MAX_FRAME) {
      return this.#drop(s, CLOSE.TOO_BIG, `Frame of ${size} bytes is over ${MAX_FRAME}`);
    }
    const now = Date.now();
    s.lastSeen = now;
    if (now - s.windowStart >= 1000) {
      s.windowStart = now;
      s.frames = 0;
    }
    if (++s.frames > this.settings.maxFramesPerSecond) {
      return this.#drop(
        s,
        CLOSE.POLICY,
        `Too many frames (over ${this.settings.maxFramesPerSecond} per second)`,
      );
    }
    if (typeof data === "string") {
      // Text frames are JSON keep-alives in the reference; anything else is garbage.
      let json: unknown;
      try {
        json = JSON.parse(data);
      } catch {
        return this.#drop(s, CLOSE.BAD_DATA, "Invalid text frame: not JSON");
      }
      if ((json as { type?: unknown } | null)?.type !== "keep-alive") {
        return this.#drop(s, CLOSE.BAD_DATA, "Invalid text frame: expected a keep-alive");
      }
      return;
    }
    let e: EventEnvelope;
    try {
      e = EventEnvelope.fromBytes(data);
    } catch (err) {
      return this.#drop(s, CLOSE.BAD_DATA, (err as Error).message.slice(0, 120));
    }
    s.seq++;
    if (e.to === "info") return this.#onInfo(s, e.headers);
    if (e.to === "keep-alive") {
      if (s.info === undefined) return this.#drop(s, CLOSE.BAD_DATA, "keep-alive before info");
      // Coalesced: a flood of keep-alives must not become a flood of records.
      if (now - s.published < this.settings.keepAlivePublishInterval * 1000) return;
      s.published = now;
      s.info = { ...s.info, seq: s.seq, updated: isoSeconds(s.lastSeen) };
      this.#publish([{ type: "put", info: s.info }]).catch(() => {});
      return;
    }
    this.#drop(s, CLOSE.BAD_DATA, `Unknown message ${JSON.stringify(e.to ?? null).slice(0, 60)}`);
  }

  #onInfo(s: Session, h: Record<string, string>): void {
    if (s.info !== undefined) return this.#drop(s, CLOSE.POLICY, "info already received");
    if (!h.name || !h.version) return this.#drop(s, CLOSE.BAD_DATA, "info needs name and version");
    // Exactly a decimal integer: " 1 ", "1e0" and "0x1" are refused, not read as 1.
    const group = /^[1-9][0-9]{0,2}$/.test(h.group ?? "") ? Number(h.group) : NaN;
    if (!(group >= 1 && group <= this.settings.maxGroups)) {
      return this.#drop(
        s,
        CLOSE.BAD_DATA,
        `Invalid group ${
          JSON.stringify(h.group ?? null).slice(0, 40)
        }: expected 1 to ${this.settings.maxGroups}`,
      );
    }
    const type = h.type;
    if (!PERSONALITIES.has(type)) {
      return this.#drop(
        s,
        CLOSE.BAD_DATA,
        `Invalid type ${
          JSON.stringify(type ?? null).slice(0, 40)
        }: expected APP, REST or RESOURCES`,
      );
    }
    this.#pending.delete(s);
    s.published = s.lastSeen;
    s.info = {
      origin: s.origin,
      name: h.name.slice(0, 200),
      version: h.version.slice(0, 100),
      type,
      group,
      monitor: this.platform.origin,
      session: s.id,
      created: isoSeconds(s.opened),
      updated: isoSeconds(s.lastSeen),
      seq: s.seq,
      instance: h.instance?.slice(0, 200),
    };
    const messages: MonitorMessage[] = [{ type: "put", info: s.info }];
    if (!s.claimed) {
      const claim = this.#nextClaim(s);
      if (claim === undefined) return;
      messages.push(claim);
    }
    // #publish logs the detail; the client hears only that it may try again.
    this.#publish(messages).catch(() => this.#drop(s, CLOSE.TRY_AGAIN, "Kafka unavailable"));
  }

  #nextClaim(s: Session): MonitorMessage | undefined {
    const topic = this.#table.nextFree(this.#claiming);
    if (topic === undefined) {
      this.#drop(s, CLOSE.TRY_AGAIN, `All virtual topics (${this.#table.all.length}) are busy`);
      return undefined;
    }
    s.claimed = true;
    this.#claiming.add(topic);
    return { type: "claim", origin: s.origin, session: s.id, topic, monitor: this.platform.origin };
  }

  #onClose(socket: PresenceSocket, code: number, reason: string): void {
    const s = this.#sessions.get(socket);
    if (s === undefined) return;
    this.#sessions.delete(socket);
    this.#pending.delete(s);
    if (this.#byOrigin.get(s.origin) === s) this.#byOrigin.delete(s.origin);
    log.info("Member {origin} left ({code} {reason})", { origin: s.origin, code, reason });
    if (s.info && !this.#stopping) {
      this.#publish([this.#del(s, `websocket closed (${code})`)]).catch(() => {});
    }
  }

  #del(s: Session, reason: string): MonitorMessage {
    return { type: "del", origin: s.origin, session: s.id, monitor: this.platform.origin, reason };
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
    const records = messages.map((m) =>
      eventRecord(this.settings.monitorTopic, 0, "monitor-0", controlEnvelope(m))
    );
    try {
      await this.#link.send(records);
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
      msg = parseControl(e);
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
        return this.#finishBootstrap(msg.table, BigInt(msg.asOf));
      }
      if (msg.type === "alive") this.#onAlive(msg);
      else b.buffer.push([BigInt(r.offset), msg]);
      return;
    }
    this.#handle(msg, r.offset);
  }

  #finishBootstrap(
    table: { connections: ConnectionInfo[] } | undefined,
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
        if (msg.monitor !== this.platform.origin && this.#ready) {
          this.#publish([{
            type: "snapshot",
            monitor: this.platform.origin,
            for: msg.monitor,
            asOf: offset,
            table: this.#table.snapshot(),
          }]).catch(() => {});
        }
        return;
      case "snapshot":
        return; // for another monitor
      default:
        this.#onEffects(this.#table.apply(msg));
    }
  }

  #onAlive(msg: { monitor: string; version: string; started: string }): void {
    const known = this.#monitors.get(msg.monitor);
    this.#monitors.set(msg.monitor, {
      lastSeen: Date.now(),
      version: msg.version,
      started: msg.started,
    });
    if (known === undefined) {
      log.info(
        msg.monitor === this.platform.origin
          ? "Registered monitor (me) {origin}"
          : "Registered monitor (peer) {origin}",
        { origin: msg.monitor },
      );
    }
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
          if (fx.monitor !== me) break;
          this.#claiming.delete(fx.topic);
          const s = this.#byOrigin.get(fx.origin);
          if (s?.id === fx.session && c) this.#sendReady(s, c, fx.topic);
          break;
        }
        case "rejected": {
          if (fx.monitor !== me) break;
          this.#claiming.delete(fx.topic);
          const s = this.#byOrigin.get(fx.origin);
          if (s?.id !== fx.session || s.closing) break;
          log.info("Claim of {topic} for {origin} lost: {why}; trying another", {
            topic: fx.topic,
            origin: fx.origin,
            why: fx.why,
          });
          const claim = this.#nextClaim(s);
          if (claim) this.#publish([claim]).catch(() => {});
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
          if (fx.by === me) this.#announce("leave", fx.info);
          const s = this.#byOrigin.get(fx.info.origin);
          // Our own session lost its record (another monitor expired us): let it reconnect.
          if (fx.info.monitor === me && s?.id === fx.info.session) {
            this.#drop(s, CLOSE.TRY_AGAIN, `Lease lost: ${fx.reason}`);
          }
          break;
        }
        case "superseded": {
          const s = this.#byOrigin.get(fx.old.origin);
          if (fx.old.monitor === me && s?.id === fx.old.session) {
            this.#drop(s, CLOSE.TRY_AGAIN, `Reconnected through monitor ${fx.by.monitor}`);
          }
          break;
        }
      }
    }
  }

  #sendReady(s: Session, c: ConnectionInfo, topic: string): void {
    const [physical, partition] = splitVirtualTopic(topic);
    this.#link.ensureTopic(physical, this.settings.partitionsPerTopic).then((n) => {
      if (n <= partition) throw new Error(`Insufficient partitions in ${physical} (${n})`);
      if (s.closing) return;
      s.socket.send(readyEnvelope(topic, this.platform.version).toBytes());
      this.#announce("join", c, topic);
    }).catch((e) => {
      // The documented reason for too few partitions; Kafka's own errors stay in the log.
      const message = (e as Error).message;
      const documented = message.startsWith("Insufficient");
      if (!documented) log.error("Cannot prepare {topic}: {message}", { topic: physical, message });
      this.#drop(s, CLOSE.TRY_AGAIN, documented ? message : "Kafka unavailable");
    });
  }

  // Join and leave, to the app's closed user group (service.monitor partition = group).
  #announce(type: "join" | "leave", c: ConnectionInfo, topic?: string): void {
    const headers: Record<string, string> = { origin: c.origin };
    if (type === "join") {
      Object.assign(headers, { topic: topic ?? "", name: c.name, version: c.version });
    }
    const record: OutRecord = eventRecord(
      this.settings.monitorTopic,
      c.group,
      `monitor-${c.group}`,
      registryEnvelope(type, c.group, headers),
    );
    this.#link.send([record]).catch((e) =>
      log.error("Cannot announce {type} of {origin}: {message}", {
        type,
        origin: c.origin,
        message: (e as Error).message,
      })
    );
  }

  // ---- housekeeping, once a second ----

  #tick(): void {
    const now = Date.now();
    const s = this.settings;
    for (const session of this.#sessions.values()) {
      if (session.closing) continue;
      if (session.info === undefined && now - session.opened > s.handshakeTimeout * 1000) {
        this.#drop(session, CLOSE.TRY_AGAIN, "handshake not completed");
      } else if (now - session.lastSeen > s.idleTimeout * 1000) {
        this.#drop(session, CLOSE.BAD_DATA, `Idle for ${s.idleTimeout} seconds`);
      }
    }
    const out: MonitorMessage[] = [];
    if (now - this.#lastAlive >= s.aliveInterval * 1000) out.push(this.#aliveMessage());
    for (const [origin, m] of this.#monitors) {
      if (origin === this.platform.origin || now - m.lastSeen < 3 * s.aliveInterval * 1000) {
        continue;
      }
      this.#monitors.delete(origin);
      log.warn("Monitor {origin} expired: no alive message for {s} s", {
        origin,
        s: Math.round((now - m.lastSeen) / 1000),
      });
      if (this.#table.connections().some((c) => c.monitor === origin)) {
        out.push({ type: "release_monitor", dead: origin, monitor: this.platform.origin });
      }
    }
    this.#publish(out).catch(() => {});
  }
}
