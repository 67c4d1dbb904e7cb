/**
 * The Java presence monitor's protocol on `service.monitor` partition 0 (docs/wire.md,
 * "The monitors' channel"), so that Java and TypeScript monitors serve one mesh with one lease table:
 *
 * - Java monitors say `monitor_alive` every 20 s (`init` when they start), ask for the
 *   connections with `download`, and publish their applications with `put` / `del`;
 * - they lease partitions under a small distributed lock: a monitor with applications waiting
 *   bids (`rsvp`); the earliest bid (or a lone bid 3 s old) may assign, between `rsvp_start` and
 *   `rsvp_complete`, each lease announced as `confirm_topic`.
 *
 * A TypeScript monitor that hears a Java monitor speaks the same messages beside its own (see
 * docs/presence.md): it bids and assigns only with the lock, and writes its applications' puts
 * and dels in the Java form too. What it writes in the Java form carries the {@link OURS_HEADER}
 * header, which Java ignores, so that TypeScript monitors skip each other's copies.
 *
 * This module is pure: parsing, the Java forms, and the bids; no I/O.
 *
 * @module
 */
import { EventEnvelope, headerOf } from "../bus/envelope.ts";
import { isOriginId } from "../bus/route.ts";
import { localTimestamp } from "../protocol/format.ts";
import type { ConnectionInfo } from "./lease_table.ts";

const SERVICE = "presence.service@monitor-0";
const HOUSEKEEPER = "presence.housekeeper@monitor-0";
const CONTROLLER = "topic.controller@monitor-0";
const ROUTES = new Set([SERVICE, HOUSEKEEPER, CONTROLLER]);

/** A Java monitor says `monitor_alive` every 20 s; TypeScript monitors say it as often to them. */
export const JAVA_ALIVE_INTERVAL_MS = 20_000;
/** Silent this long, a Java monitor is gone (Java's HouseKeeper drops monitors after a minute). */
export const JAVA_MONITOR_SILENCE_MS = 60_000;
/** A bid not refreshed for this long is dropped (Java's RSVP_TIMEOUT). */
export const RSVP_TIMEOUT_MS = 20_000;
/** A lone bid waits this long after its last refresh before it assigns (Java's grace period). */
export const RSVP_GRACE_MS = 3_000;
/** Marks a message that a TypeScript monitor wrote in the Java form. */
export const OURS_HEADER = "minimesh";

/** A Java monitor's message on partition 0. */
export type JavaMessage =
  | { type: "init"; origin: string }
  | { type: "monitor_alive"; origin: string; apps: string[] }
  | { type: "download"; origin: string }
  /** One application's record (`origin` is the application's). */
  | { type: "put"; origin: string; info: Record<string, unknown> }
  /** A monitor's answer to `download`: every application it knows. */
  | { type: "puts"; origin: string; apps: Record<string, Record<string, unknown>> }
  | { type: "del"; origin: string }
  | { type: "rsvp"; monitor: string; time: number }
  | { type: "rsvp_start"; monitor: string }
  | { type: "rsvp_complete"; monitor: string }
  | { type: "confirm_topic"; monitor: string; topic: string; origin: string };

/** Whether `e`, read on partition 0, is addressed as a Java monitor's message. */
export function isJavaRecord(e: EventEnvelope): boolean {
  return ROUTES.has(e.to ?? "");
}

function header(e: EventEnvelope, key: string): string {
  const v = headerOf(e.headers, key);
  if (typeof v !== "string" || v === "") throw new TypeError(`header ${key} is missing`);
  return v;
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TypeError(`${what} must be a map`);
  }
  return v as Record<string, unknown>;
}

/**
 * Decodes a Java monitor's message, and whether a TypeScript monitor wrote it.
 *
 * @throws {TypeError} Naming what is missing or malformed, or an unknown type.
 */
export function parseJava(e: EventEnvelope): { java: JavaMessage; ours: boolean } {
  const type = headerOf(e.headers, "type");
  const java = javaMessage(e, type);
  if (java === undefined) {
    throw new TypeError(`unknown message ${JSON.stringify(type ?? null)} to ${e.to}`);
  }
  return { java, ours: headerOf(e.headers, OURS_HEADER) !== undefined };
}

function javaMessage(e: EventEnvelope, type: string | undefined): JavaMessage | undefined {
  switch (e.to) {
    case HOUSEKEEPER:
      if (type === "init") return { type, origin: header(e, "origin") };
      if (type === "monitor_alive") {
        const apps = Array.isArray(e.body) ? e.body.filter((o) => typeof o === "string") : [];
        return { type, origin: header(e, "origin"), apps };
      }
      return undefined;
    case SERVICE:
      if (type === "download" || type === "del") return { type, origin: header(e, "origin") };
      if (type === "put" && headerOf(e.headers, "multiples") !== undefined) {
        const apps = record(e.body, "the body of a put of several");
        for (const [k, v] of Object.entries(apps)) record(v, `the record of ${k.slice(0, 60)}`);
        return { type: "puts", origin: header(e, "origin"), apps } as JavaMessage;
      }
      if (type === "put") {
        return { type, origin: header(e, "origin"), info: record(e.body, "body") };
      }
      return undefined;
    case CONTROLLER: {
      const monitor = header(e, "monitor");
      if (type === "rsvp") {
        const time = Date.parse(header(e, "rsvp_time"));
        if (Number.isNaN(time)) throw new TypeError("header rsvp_time is not a time");
        return { type, monitor, time };
      }
      if (type === "rsvp_start" || type === "rsvp_complete") return { type, monitor };
      if (type === "confirm_topic") {
        return { type, monitor, topic: header(e, "topic"), origin: header(e, "origin") };
      }
      return undefined;
    }
  }
  return undefined;
}

/** The Java form of `msg`, marked as a TypeScript monitor's. */
export function javaEnvelope(msg: JavaMessage): EventEnvelope {
  const h: Record<string, string> = { type: msg.type, [OURS_HEADER]: "1" };
  switch (msg.type) {
    case "init":
      return new EventEnvelope({ to: HOUSEKEEPER, headers: { ...h, origin: msg.origin } });
    case "monitor_alive":
      return new EventEnvelope({
        to: HOUSEKEEPER,
        headers: { ...h, origin: msg.origin },
        body: msg.apps,
      });
    case "download":
    case "del":
      return new EventEnvelope({ to: SERVICE, headers: { ...h, origin: msg.origin } });
    case "put":
      return new EventEnvelope({
        to: SERVICE,
        headers: { ...h, origin: msg.origin },
        body: msg.info,
      });
    case "puts":
      return new EventEnvelope({
        to: SERVICE,
        headers: { ...h, type: "put", origin: msg.origin, multiples: "true" },
        body: msg.apps,
      });
    case "rsvp":
      return new EventEnvelope({
        to: CONTROLLER,
        headers: { ...h, monitor: msg.monitor, rsvp_time: new Date(msg.time).toISOString() },
      });
    case "rsvp_start":
    case "rsvp_complete":
      return new EventEnvelope({ to: CONTROLLER, headers: { ...h, monitor: msg.monitor } });
    case "confirm_topic":
      return new EventEnvelope({
        to: CONTROLLER,
        headers: { ...h, monitor: msg.monitor, topic: msg.topic, origin: msg.origin },
      });
  }
}

/** Which monitor wrote `msg`, where the message says (a single `del` does not). */
export function writerOf(msg: JavaMessage): string | undefined {
  switch (msg.type) {
    case "init":
    case "monitor_alive":
    case "download":
    case "puts":
      return msg.origin;
    case "put":
      return typeof msg.info.monitor === "string" ? msg.info.monitor : undefined;
    case "del":
      return undefined;
    default:
      return msg.monitor;
  }
}

/** A connection as a Java monitor keeps it (never the verifier: it stays with minimesh). */
export function javaInfo(c: ConnectionInfo): Record<string, unknown> {
  const info: Record<string, unknown> = {
    created: localTimestamp(Date.parse(c.created)),
    updated: localTimestamp(Date.parse(c.updated)),
    monitor: c.monitor,
    id: c.session,
    seq: c.seq,
    name: c.name,
    version: c.version,
    group: c.group,
    type: c.type,
  };
  if (c.topic !== undefined) info.topic = c.topic;
  if (c.instance !== undefined) info.instance = c.instance;
  return info;
}

// Java writes local times (`2026-11-27 20:50:13.123`); read as this process's local time.
function isoOf(v: unknown, fallback: number): string {
  const ms = typeof v === "string" ? Date.parse(v.replace(" ", "T")) : NaN;
  return new Date(Number.isNaN(ms) ? fallback : ms).toISOString();
}

/**
 * A connection from a Java monitor's record of `origin`.
 *
 * @throws {TypeError} When the record lacks what a connection needs.
 */
export function fromJavaInfo(
  origin: string,
  info: Record<string, unknown>,
  now: number,
): ConnectionInfo {
  const text = (k: string, max: number) => {
    const v = info[k];
    if (typeof v !== "string" || v === "") throw new TypeError(`${k} must be a string`);
    return v.slice(0, max);
  };
  if (!isOriginId(origin)) throw new TypeError("not an origin id");
  const group = Number(info.group);
  if (!Number.isInteger(group) || group < 1) throw new TypeError("group must be a number");
  return {
    origin,
    name: text("name", 200),
    version: text("version", 100),
    type: text("type", 20),
    group,
    monitor: text("monitor", 80),
    session: text("id", 200),
    created: isoOf(info.created, now),
    updated: isoOf(info.updated, now),
    seq: Number(info.seq) || 0,
    topic: typeof info.topic === "string" ? info.topic.slice(0, 200) : undefined,
    instance: typeof info.instance === "string" ? info.instance.slice(0, 200) : undefined,
  };
}

/** How long a Java monitor holds a partition for an origin after the last record naming both. */
export const JAVA_TOPIC_EXPIRY_MS = 60_000;
/** At most this many origins' partitions are remembered (a bound against hostile records). */
const MAX_JAVA_ORIGINS = 10_000;

/**
 * The partitions Java monitors hold, as Java's topic controller keeps them: each record that maps
 * a partition to an origin (`confirm_topic`, an application's `put` naming its topic, an answer to
 * `download`) holds that partition for that origin until a minute after the last such record.
 * Java keeps an application's old partition so after leasing it another, and its answers to
 * `download` name the first of them in sorted order, often the old one: a partition held here
 * may still be read by its application, and no other application may have it meanwhile.
 */
export class JavaTopics {
  /** Partition → the origin the latest record mapped it to, and when. */
  readonly #held = new Map<string, { origin: string; at: number }>();
  /** Origin → the partition its latest own record (a lease, or its report) names. */
  readonly #named = new Map<string, { topic: string; at: number }>();

  /**
   * A record mapped `topic` to `origin` at `at` (ms); `named` when it is the lease itself or the
   * application's own report, not a monitor's answer to `download`.
   */
  map(topic: string, origin: string, at: number, named: boolean): void {
    const held = this.#held.get(topic);
    if (held === undefined || held.at <= at) this.#held.set(topic, { origin, at });
    if (!named) return;
    const last = this.#named.get(origin);
    if (last !== undefined ? last.at <= at : this.#named.size < MAX_JAVA_ORIGINS) {
      this.#named.set(origin, { topic, at });
    }
  }

  /**
   * Whether `topic` is held for an origin other than `origin` that `live` says is connected, as
   * of `now`.
   */
  holds(topic: string, origin: string, now: number, live: (origin: string) => boolean): boolean {
    const held = this.#held.get(topic);
    return held !== undefined && held.origin !== origin && now - held.at < JAVA_TOPIC_EXPIRY_MS &&
      live(held.origin);
  }

  /** The partition that the latest lease or report of `origin` named within the window. */
  named(origin: string, now: number): string | undefined {
    const n = this.#named.get(origin);
    return n !== undefined && now - n.at < JAVA_TOPIC_EXPIRY_MS ? n.topic : undefined;
  }

  /** Forgets what expired by `now`. */
  expire(now: number): void {
    for (const [t, h] of this.#held) if (now - h.at >= JAVA_TOPIC_EXPIRY_MS) this.#held.delete(t);
    for (const [o, n] of this.#named) if (now - n.at >= JAVA_TOPIC_EXPIRY_MS) this.#named.delete(o);
  }
}

/**
 * The bids of the Java monitors' lease lock (Java's `TopicController`): every monitor records
 * every `rsvp` it reads, so all agree on who may assign next.
 */
export class RsvpBids {
  readonly #bids = new Map<string, { created: number; lastSeen: number }>();

  /** A monitor bids (or refreshes its bid); the first `rsvp_time` of a bid is its place. */
  bid(monitor: string, time: number, now: number): void {
    const b = this.#bids.get(monitor);
    if (b !== undefined) b.lastSeen = now;
    else this.#bids.set(monitor, { created: time, lastSeen: now });
  }

  /** A bidder shows it is still at work (`confirm_topic`). */
  touch(monitor: string, now: number): void {
    const b = this.#bids.get(monitor);
    if (b !== undefined) b.lastSeen = now;
  }

  /** A bidder finished its round (`rsvp_complete`). */
  remove(monitor: string): void {
    this.#bids.delete(monitor);
  }

  /** Whether `monitor` has a bid. */
  has(monitor: string): boolean {
    return this.#bids.has(monitor);
  }

  /** How many bids there are. */
  get size(): number {
    return this.#bids.size;
  }

  /**
   * Whether `me` may assign now: bids silent for {@link RSVP_TIMEOUT_MS} are dropped; a lone bid
   * waits {@link RSVP_GRACE_MS} after its last refresh; among several, the earliest wins (ties
   * by origin).
   */
  rightsOf(me: string, now: number): boolean {
    for (const [m, b] of this.#bids) if (now - b.lastSeen > RSVP_TIMEOUT_MS) this.#bids.delete(m);
    const mine = this.#bids.get(me);
    if (mine === undefined) return false;
    if (this.#bids.size === 1) return now - mine.lastSeen > RSVP_GRACE_MS;
    let winner: [string, number] | undefined;
    for (const [m, b] of this.#bids) {
      if (
        winner === undefined || b.created < winner[1] || (b.created === winner[1] && m < winner[0])
      ) winner = [m, b.created];
    }
    return winner![0] === me;
  }
}
