/**
 * What monitors say to each other on `service.monitor` partition 0: their lease table's changes,
 * liveness, snapshots for a starting monitor, the applications' reports, and (through
 * java_monitor.ts) the Java monitors' own messages. What applications and monitors say to each
 * other is in protocol/.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import type { ConnectionInfo, ControlMessage, Departed, TableSnapshot } from "./lease_table.ts";
import type { AppReport } from "../protocol/report.ts";
import { parseReport } from "./app_stats.ts";
import { javaEnvelope, OURS_HEADER } from "./java_monitor.ts";
import type { JavaMessage } from "./java_monitor.ts";

/** What a monitor knows of another (or itself) from its messages. */
export interface KnownMonitor {
  /** When it was last heard (ms). */
  lastSeen: number;
  started: string;
  version: string;
  /** A Java monitor (heard in its own protocol). */
  java?: boolean;
}

/** Where earlier monitors addressed each other on partition 0 (still read from them). */
export const CONTROL_ROUTE = "presence.monitor@monitor-0";
/**
 * Where monitors address each other on partition 0: Java's HouseKeeper route, whose handler
 * ignores types other than its own. A route a Java monitor does not have costs an error line per
 * record in its log, and a starting monitor cannot know whether a Java monitor listens.
 */
export const QUIET_CONTROL_ROUTE = "presence.housekeeper@monitor-0";
/** The `minimesh` header value that marks a monitor message sent to the quiet route. */
const QUIET_MARK = "control";

/** Whether `e`, read on partition 0, is a TypeScript monitor's own message. */
export function isControl(e: EventEnvelope): boolean {
  return e.to === CONTROL_ROUTE ||
    (e.to === QUIET_CONTROL_ROUTE && e.headers[OURS_HEADER] === QUIET_MARK);
}

/** Messages that are not about the lease table. */
export type MonitorMessage =
  | ControlMessage
  | { type: "alive"; monitor: string; version: string; started: string }
  | { type: "download"; monitor: string }
  /** A monitor that stops gracefully: its applications will reconnect through the others. */
  | { type: "handover"; monitor: string }
  /**
   * The table for a starting monitor, in `parts` records (part 1 to `parts`), so that no record
   * is over Kafka's 1 MiB (see {@link snapshotParts}).
   */
  | {
    type: "snapshot";
    monitor: string;
    for: string;
    asOf: string;
    table: TableSnapshot;
    part: number;
    parts: number;
  }
  /** What the applications connected through `monitor` reported (see `app_stats.ts`). */
  | { type: "stats"; monitor: string; apps: { origin: string; report: AppReport }[] }
  /** A message in the Java monitors' protocol (java_monitor.ts); `ours` when a TypeScript monitor wrote it. */
  | { type: "java"; java: JavaMessage; ours: boolean };

/** Encodes a monitor message as an envelope for partition 0 (see {@link QUIET_CONTROL_ROUTE}). */
export function controlEnvelope(msg: MonitorMessage): EventEnvelope {
  if (msg.type === "java") return javaEnvelope(msg.java);
  const e = new EventEnvelope({
    to: QUIET_CONTROL_ROUTE,
    headers: { type: msg.type, [OURS_HEADER]: QUIET_MARK },
  });
  const h = e.headers;
  switch (msg.type) {
    case "put":
      h.origin = msg.info.origin;
      h.monitor = msg.info.monitor;
      e.body = { ...msg.info };
      break;
    case "claim":
      Object.assign(h, { origin: msg.origin, session: msg.session, topic: msg.topic });
      h.monitor = msg.monitor;
      break;
    case "del":
      Object.assign(h, { origin: msg.origin, session: msg.session, reason: msg.reason });
      h.monitor = msg.monitor;
      break;
    case "release_monitor":
      Object.assign(h, { dead: msg.dead, monitor: msg.monitor });
      break;
    case "held":
      h.monitor = msg.monitor;
      e.body = { connections: msg.connections };
      break;
    case "alive":
      Object.assign(h, { monitor: msg.monitor, version: msg.version, started: msg.started });
      break;
    case "download":
    case "handover":
      h.monitor = msg.monitor;
      break;
    case "snapshot":
      Object.assign(h, { monitor: msg.monitor, for: msg.for, as_of: msg.asOf });
      if (msg.parts > 1) Object.assign(h, { part: String(msg.part), parts: String(msg.parts) });
      e.body = msg.table;
      break;
    case "stats":
      h.monitor = msg.monitor;
      e.body = { apps: msg.apps.map((a) => ({ origin: a.origin, ...a.report })) };
      break;
  }
  return e;
}

function str(h: Record<string, string>, key: string): string {
  const v = h[key];
  if (typeof v !== "string" || v === "") throw new TypeError(`header ${key} is missing`);
  return v;
}

function connectionInfo(body: unknown): ConnectionInfo {
  const b = body as Record<string, unknown> | null;
  if (b === null || typeof b !== "object") throw new TypeError("body must be a map");
  const s = (k: string) => {
    if (typeof b[k] !== "string") throw new TypeError(`body.${k} must be a string`);
    return b[k] as string;
  };
  const group = Number(b.group);
  if (!Number.isInteger(group)) throw new TypeError("body.group must be an integer");
  return {
    origin: s("origin"),
    name: s("name"),
    version: s("version"),
    type: s("type"),
    group,
    monitor: s("monitor"),
    session: s("session"),
    created: s("created"),
    updated: s("updated"),
    seq: Number(b.seq) || 0,
    topic: typeof b.topic === "string" ? b.topic : undefined,
    instance: typeof b.instance === "string" ? b.instance : undefined,
    verifier: typeof b.verifier === "string" ? b.verifier : undefined,
  };
}

// Departed owned origins in a snapshot; older monitors send none.
function departedList(body: unknown): Departed[] {
  const list = (body as TableSnapshot | null)?.departed;
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError("snapshot departed must be a list");
  return list.map((d) => {
    const { origin, verifier, at } = (d ?? {}) as Partial<Departed>;
    if (typeof origin !== "string" || typeof verifier !== "string" || typeof at !== "number") {
      throw new TypeError("snapshot departed entries need origin, verifier and at");
    }
    return { origin, verifier, at };
  });
}

function connectionList(type: string, body: unknown): ConnectionInfo[] {
  const list = (body as TableSnapshot | null)?.connections;
  if (!Array.isArray(list)) throw new TypeError(`${type} body must have a connections list`);
  return list.map(connectionInfo);
}

/**
 * Decodes a monitor message from its envelope.
 *
 * @throws {TypeError} Naming what is missing or malformed.
 */
export function parseControl(e: EventEnvelope): MonitorMessage {
  const h = e.headers;
  const type = h.type;
  switch (type) {
    case "put":
      return { type, info: connectionInfo(e.body) };
    case "claim":
      return {
        type,
        origin: str(h, "origin"),
        session: str(h, "session"),
        topic: str(h, "topic"),
        monitor: str(h, "monitor"),
      };
    case "del":
      return {
        type,
        origin: str(h, "origin"),
        session: str(h, "session"),
        monitor: str(h, "monitor"),
        reason: h.reason ?? "",
      };
    case "release_monitor":
      return { type, dead: str(h, "dead"), monitor: str(h, "monitor") };
    case "alive":
      return {
        type,
        monitor: str(h, "monitor"),
        version: h.version ?? "",
        started: h.started ?? "",
      };
    case "download":
    case "handover":
      return { type, monitor: str(h, "monitor") };
    case "held":
      return { type, monitor: str(h, "monitor"), connections: connectionList(type, e.body) };
    case "snapshot": {
      // Absent in a table of one record (and from monitors that always wrote one).
      const parts = Number(h.parts ?? 1), part = Number(h.part ?? 1);
      if (!Number.isInteger(parts) || parts < 1 || parts > 1000 || !(part >= 1 && part <= parts)) {
        throw new TypeError(`snapshot part ${h.part} of ${h.parts}`);
      }
      return {
        type,
        monitor: str(h, "monitor"),
        for: str(h, "for"),
        asOf: str(h, "as_of"),
        table: { connections: connectionList(type, e.body), departed: departedList(e.body) },
        part,
        parts,
      };
    }
    case "stats": {
      const apps = (e.body as { apps?: unknown } | null)?.apps;
      if (!Array.isArray(apps)) throw new TypeError("stats body must have an apps list");
      return {
        type,
        monitor: str(h, "monitor"),
        apps: apps.map((a) => {
          const origin = (a as { origin?: unknown } | null)?.origin;
          if (typeof origin !== "string") throw new TypeError("stats apps need an origin");
          return { origin, report: parseReport(a) };
        }),
      };
    }
    default:
      throw new TypeError(`unknown control message type ${JSON.stringify(type)}`);
  }
}

/**
 * A table cut into parts of at most `perPart` entries (connections, then departures): a
 * connection's record is under 1 KB (its strings are capped), so a part stays far under Kafka's
 * 1 MiB record limit however many applications there are.
 */
export function snapshotParts(table: TableSnapshot, perPart = 400): TableSnapshot[] {
  const parts: TableSnapshot[] = [];
  const departed = table.departed ?? [];
  for (let i = 0; i < table.connections.length; i += perPart) {
    parts.push({ connections: table.connections.slice(i, i + perPart), departed: [] });
  }
  for (let i = 0; i < departed.length; i += perPart) {
    parts.push({ connections: [], departed: departed.slice(i, i + perPart) });
  }
  return parts.length > 0 ? parts : [{ connections: [], departed: [] }];
}

/** The most a `stats` record of a monitor holds (bytes, estimated from UTF-8 at worst). */
const SHARE_BYTES = 256 * 1024;

/**
 * What a monitor's sessions reported, as `stats` messages to the other monitors: records of at
 * most 100 applications and about 256 KiB, well under Kafka's 1 MiB (a report holds at most
 * 16 K characters of route names, and 50 called routes with 2,000 latency buckets).
 */
export function statsMessages(
  monitor: string,
  apps: { origin: string; report: AppReport }[],
): MonitorMessage[] {
  const out: MonitorMessage[] = [];
  let batch: typeof apps = [], bytes = 0;
  for (const app of apps) {
    const size = 200 + (app.report.routes ?? []).reduce((n, r) => n + 3 * r.length + 2, 0) +
      (app.report.calls?.routes ?? []).reduce(
        (n, c) => n + 3 * c.route.length + 40 + 12 * c.latency.length,
        0,
      );
    if (batch.length === 100 || (batch.length > 0 && bytes + size > SHARE_BYTES)) {
      out.push({ type: "stats", monitor, apps: batch });
      batch = [];
      bytes = 0;
    }
    batch.push(app);
    bytes += size;
  }
  if (batch.length > 0) out.push({ type: "stats", monitor, apps: batch });
  return out;
}
