/**
 * Java monitors on the monitors' channel (docs/presence.md): a TypeScript monitor that hears
 * one keeps its table in step with theirs (their `put`s, `del`s and `confirm_topic`s), writes
 * its own records in their form too, and gives leases only under their lock (the RSVP round).
 * The wire form of their messages is in java_monitor.ts.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import {
  fromJavaInfo,
  JAVA_ALIVE_INTERVAL_MS,
  JAVA_MONITOR_SILENCE_MS,
  javaInfo,
  JavaTopics,
  RsvpBids,
  writerOf,
} from "./java_monitor.ts";
import type { JavaMessage } from "./java_monitor.ts";
import type { ConnectionInfo, ControlMessage, Effect, LeaseTable } from "./lease_table.ts";
import type { KnownMonitor, MonitorMessage } from "./control.ts";
import type { Session, Sessions } from "./sessions.ts";
import type { Claim } from "./leasing.ts";

const log = logger("presence");

/** What the Java side needs of its monitor. */
export interface JavaPeersContext {
  /** The monitor's origin. */
  readonly me: string;
  readonly table: LeaseTable;
  /** Every monitor heard, Java ones marked `java`. */
  readonly monitors: Map<string, KnownMonitor>;
  readonly sessions: Sessions;
  /** Whether the monitor is in sync with the channel. */
  ready(): boolean;
  /** Whether it is stopping. */
  stopping(): boolean;
  /** Writes messages to the channel. */
  publish(messages: MonitorMessage[]): Promise<void>;
  /** The next lease to claim for a session, or undefined (the session was refused). */
  nextClaim(s: Session): Claim | undefined;
  /** Applies a change to the table, acting on its effects. */
  apply(msg: ControlMessage): Effect[];
  /** The dashboard's state changed. */
  changed(): void;
}

/** The Java monitors that one TypeScript monitor hears, and their lease lock. */
export class JavaPeers {
  readonly #c: JavaPeersContext;
  /** The lock's bids, and the sessions waiting for it. */
  readonly #bids = new RsvpBids();
  readonly #waiting = new Set<Session>();
  /** The partitions the Java monitors hold (for a minute after each record naming them). */
  readonly #topics = new JavaTopics();
  #bidSentAt = 0;
  #bidInFlight = false;
  /** When this monitor's current round was sent (0: none). */
  #roundAt = 0;
  #lastAlive = 0;

  /** The Java side of the monitor that `context` describes. */
  constructor(context: JavaPeersContext) {
    this.#c = context;
  }

  /** Whether a Java monitor is heard (asked per publish: no list is built). */
  get mixed(): boolean {
    for (const m of this.#c.monitors.values()) if (m.java) return true;
    return false;
  }

  /** The Java monitors heard within the last minute. */
  list(): string[] {
    return [...this.#c.monitors].filter(([, m]) => m.java).map(([origin]) => origin);
  }

  /** Whether `monitor` is a Java monitor. */
  isJava(monitor: string): boolean {
    return this.#c.monitors.get(monitor)?.java === true;
  }

  /**
   * Whether a Java monitor still holds `topic` for a connected application other than `origin`
   * (see {@link JavaTopics}): such a partition may still be read, and is not to be given.
   */
  reserved(topic: string, origin: string): boolean {
    return this.#topics.holds(
      topic,
      origin,
      Date.now(),
      (o) => this.#c.table.connection(o) !== undefined,
    );
  }

  /**
   * A Java message written before this monitor started (read back over the last minute): the
   * partitions it maps are held as the Java monitors hold them, and its writer is a Java monitor
   * that must answer this monitor's `init` before it is ready (see bootstrap.ts).
   */
  history(m: JavaMessage, ours: boolean, at: number): void {
    this.#mapTopics(m, ours, at);
    const writer = ours ? undefined : writerOf(m);
    if (writer === undefined || writer === this.#c.me) return;
    if (Date.now() - at < JAVA_MONITOR_SILENCE_MS) this.#note(writer, at);
  }

  // Records the Java monitor `origin` as heard at `at`; true the first time (logged then). A
  // TypeScript monitor's origin is left as it is.
  #note(origin: string, at: number): boolean {
    const monitors = this.#c.monitors;
    const known = monitors.get(origin);
    if (known !== undefined && !known.java) return false;
    monitors.set(origin, { lastSeen: at, version: "Java", started: "", java: true });
    if (known !== undefined) return false;
    log.info(
      "Registered monitor (peer) {origin}, a Java monitor: leases are given under its " +
        "RSVP lock from now on",
      { origin },
    );
    return true;
  }

  // The partitions a Java message maps to applications (see JavaTopics).
  #mapTopics(m: JavaMessage, ours: boolean, at: number): void {
    const map = (topic: unknown, origin: string, named: boolean) => {
      if (typeof topic === "string" && this.#c.table.isVirtualTopic(topic)) {
        this.#topics.map(topic, origin, at, named);
      }
    };
    // Every confirm_topic counts, a TypeScript monitor's too: the Java monitors apply them all.
    if (m.type === "confirm_topic") map(m.topic, m.origin, true);
    else if (ours) return;
    else if (m.type === "put") map(m.info.topic, m.origin, true);
    else if (m.type === "puts") {
      for (const [origin, info] of Object.entries(m.apps)) map(info.topic, origin, false);
    }
  }

  /** A session that waits for the lock before it claims (see {@link JavaPeers.round}). */
  wait(s: Session): void {
    this.#waiting.add(s);
    queueMicrotask(() => this.round());
  }

  /** `m`, with its Java form while Java monitors listen (this monitor's records and releases). */
  twin(m: MonitorMessage): MonitorMessage[] {
    const { me } = this.#c;
    let java: JavaMessage | undefined;
    if (m.type === "put" && m.info.monitor === me) {
      const topic = m.info.topic ?? this.#c.table.connection(m.info.origin)?.topic;
      java = { type: "put", origin: m.info.origin, info: javaInfo({ ...m.info, topic }) };
    } else if (m.type === "del" && m.monitor === me) {
      java = { type: "del", origin: m.origin };
    }
    return java === undefined ? [m] : [m, { type: "java", java, ours: true }];
  }

  /** Handles a Java monitor's message; `ours` when a TypeScript monitor wrote it. */
  onMessage(m: JavaMessage, ours: boolean): void {
    const { me } = this.#c;
    const now = Date.now();
    this.#mapTopics(m, ours, now);
    // The lock's messages count whoever wrote them: TypeScript monitors bid too.
    switch (m.type) {
      case "rsvp":
        this.#bids.bid(m.monitor, m.time, now);
        if (m.monitor === me) this.#bidInFlight = false;
        return this.round();
      case "rsvp_complete":
        this.#bids.remove(m.monitor);
        if (m.monitor === me) this.#roundAt = 0;
        return this.round();
      case "confirm_topic":
        this.#bids.touch(m.monitor, now);
        break;
    }
    if (ours) return; // a TypeScript monitor's copy of what its own messages say
    const writer = writerOf(m);
    if (writer !== undefined && writer !== me) this.#heard(writer, now);
    switch (m.type) {
      case "init": // a Java monitor started: it learns of this one at once
        this.#publish([{ type: "monitor_alive", origin: me, apps: this.#origins() }]);
        return;
      case "download":
        if (this.#c.ready()) this.#publish([this.#puts()]);
        return;
      case "put":
        return this.#applyRecord(m.origin, m.info, now, false);
      case "puts":
        for (const [origin, info] of Object.entries(m.apps)) {
          this.#applyRecord(origin, info, now, true);
        }
        return;
      case "del": {
        // Only a record that a Java monitor holds: its session closed there.
        const c = this.#c.table.connection(m.origin);
        if (c === undefined || !this.isJava(c.monitor)) return;
        const reason = "websocket closed (Java monitor)";
        this.#c.apply({
          type: "del",
          origin: c.origin,
          session: c.session,
          monitor: c.monitor,
          reason,
        });
        return this.#c.changed();
      }
      case "confirm_topic":
        if (this.#c.apply({ ...m, type: "assign" }).length) this.#c.changed();
        return;
    }
  }

  /**
   * The Java monitors' lock: bids while sessions wait; with the rights, claims for all of them
   * between rsvp_start and rsvp_complete, each claim with its confirm_topic for the Java
   * monitors. Without Java monitors (any more), the waiting sessions claim at once.
   */
  round(): void {
    const c = this.#c;
    if (!c.ready() || c.stopping()) return;
    for (const s of this.#waiting) {
      if (s.closing || c.sessions.of(s.origin) !== s) this.#waiting.delete(s);
    }
    if (this.#waiting.size === 0) return;
    const waiting = [...this.#waiting];
    if (!this.mixed) { // the Java monitors went: no lock to wait for
      this.#waiting.clear();
      const claims = waiting.map((s) => c.nextClaim(s)).filter((m) => m !== undefined);
      c.publish(claims).catch(() => {});
      return;
    }
    const now = Date.now();
    const me = c.me;
    // A bid is refreshed while it waits behind others: one silent for 20 s is dropped.
    const bidding = this.#bids.has(me) || (this.#bidInFlight && now - this.#bidSentAt < 10_000);
    const stale = this.#bids.has(me) && this.#bids.size > 1 && now - this.#bidSentAt > 10_000;
    if (!bidding || stale) {
      this.#bidSentAt = now;
      this.#bidInFlight = true;
      this.#publish([{ type: "rsvp", monitor: me, time: now }], () => this.#bidInFlight = false);
      return;
    }
    if (now - this.#roundAt < 10_000 || !this.#bids.rightsOf(me, now)) return;
    this.#roundAt = now;
    this.#waiting.clear();
    const out: MonitorMessage[] = [java({ type: "rsvp_start", monitor: me })];
    for (const s of waiting) {
      const claim = c.nextClaim(s);
      if (claim === undefined) continue;
      // A reconnecting origin keeps the lease it has.
      const topic = c.table.connection(s.origin)?.topic ?? claim.topic;
      out.push(claim, java({ type: "confirm_topic", monitor: me, topic, origin: s.origin }));
    }
    out.push(java({ type: "rsvp_complete", monitor: me }));
    c.publish(out).catch(() => (this.#roundAt = 0));
  }

  /** Once a second: this monitor's `monitor_alive` for the Java monitors, and the lock. */
  tick(now: number): void {
    this.#topics.expire(now);
    if (this.mixed && now - this.#lastAlive >= JAVA_ALIVE_INTERVAL_MS) {
      this.#lastAlive = now;
      this.#publish([{ type: "monitor_alive", origin: this.#c.me, apps: this.#origins() }]);
    }
    this.round();
  }

  #publish(messages: JavaMessage[], onError: () => void = () => {}): void {
    this.#c.publish(messages.map(java)).catch(onError);
  }

  // The applications that TypeScript monitors hold, in the Java form (Java monitors answer for
  // their own).
  #puts(): JavaMessage {
    const apps: Record<string, Record<string, unknown>> = {};
    for (const c of this.#c.table.connections()) {
      if (!this.isJava(c.monitor)) apps[c.origin] = javaInfo(c);
    }
    return { type: "puts", origin: this.#c.me, apps };
  }

  // A Java monitor's record of one of its applications (a record of an application that a
  // TypeScript monitor holds is that monitor's to say). An `answer` to `download` may name an
  // old partition (see JavaTopics): it moves no application the table places already, and one it
  // does not place goes where its latest lease or report said.
  #applyRecord(
    origin: string,
    info: Record<string, unknown>,
    now: number,
    answer: boolean,
  ): void {
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
    if (!this.isJava(c.monitor)) return;
    const placed = this.#c.table.connection(origin)?.topic !== undefined;
    const topic = !answer
      ? c.topic
      : placed
      ? undefined
      : this.#topics.named(origin, now) ?? c.topic;
    const effects = this.#c.apply({ type: "put", info: { ...c, topic: undefined }, foreign: true });
    if (topic !== undefined) {
      effects.push(...this.#c.apply({ type: "assign", origin, topic, monitor: c.monitor }));
    }
    if (effects.length) this.#c.changed();
  }

  #heard(origin: string, now: number): void {
    if (!this.#note(origin, now)) return;
    this.#c.changed();
    this.#lastAlive = now;
    const me = this.#c.me;
    this.#publish([
      { type: "monitor_alive", origin: me, apps: this.#origins() },
      this.#puts(),
      { type: "download", origin: me },
    ]);
  }

  #origins(): string[] {
    return this.#c.table.connections().map((c) => c.origin);
  }
}

function java(message: JavaMessage): MonitorMessage {
  return { type: "java", java: message, ours: true };
}
