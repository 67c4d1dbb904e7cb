/**
 * What an application and its presence monitor say over the websocket
 * (`/ws/presence/<origin>`), as the Java original does: each message is an event envelope whose
 * `to` names it. The application sends `info` once (who it is), then `keep-alive` (and `stats`
 * to a minimesh monitor); the monitor answers `ready` with the virtual topic it leased; either
 * side's `peer` asks or answers whether origins are still connected. Both ends build and read
 * the messages here.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import type { AppReport } from "./report.ts";

/** The names of the messages an application sends (each envelope's `to`). */
export const APP_MESSAGE = {
  /** Who the application is: name, version, group, type, and a lease it already holds. */
  INFO: "info",
  /** The application is alive (binary envelopes; older clients send JSON text frames). */
  KEEP_ALIVE: "keep-alive",
  /** What the application did (see report.ts); minimesh monitors only. */
  STATS: "stats",
  /** Which of these origins are still connected (asked by the app, answered by the monitor). */
  PEER_QUERY: "peer",
} as const;
/** An application's message name. */
export type AppMessage = typeof APP_MESSAGE[keyof typeof APP_MESSAGE];

/** The monitor's answer to `info`: the virtual topic leased to the application. */
export const READY = "ready";

/** The most origins one `peer` query may carry (1,000 are 41 KB, under the 64 KB frame limit). */
export const MAX_PEERS_PER_QUERY = 1000;

/** Websocket close codes a monitor uses. */
export const CLOSE = {
  /** The monitor is going away (shutdown). */
  GOING_AWAY: 1001,
  /** Bad data: undecodable frame, unknown message, text garbage, idle. */
  BAD_DATA: 1003,
  /** Not an acceptable identity (an invalid origin id). */
  POLICY: 1008,
  /** A frame over the size limit. */
  TOO_BIG: 1009,
  /** Try again later: starting up, busy, already connected, handshake not completed. */
  TRY_AGAIN: 1013,
} as const;

/**
 * The close code of an application that found its monitor silent and goes to another with its
 * lease (application range): it is not leaving the mesh.
 */
export const CLOSE_MONITOR_SILENT = 4008;

/** An application's `info` or `keep-alive`, with its headers. */
export function appMessage(
  type: typeof APP_MESSAGE.INFO | typeof APP_MESSAGE.KEEP_ALIVE,
  headers: Record<string, string>,
): EventEnvelope {
  return new EventEnvelope({ to: type, headers });
}

/** An application's `stats` report. */
export function statsMessage(report: AppReport): EventEnvelope {
  return new EventEnvelope({ to: APP_MESSAGE.STATS, body: report });
}

/** A `peer` query (`origins`) or its answer (`connected`), matched by `id`. */
export function peerMessage(
  id: string,
  list: { origins: readonly string[] } | { connected: readonly string[] },
): EventEnvelope {
  const headers: Record<string, string> = "origins" in list
    ? { id, origins: list.origins.join(",") }
    : { id, connected: list.connected.join(",") };
  return new EventEnvelope({ to: APP_MESSAGE.PEER_QUERY, headers });
}

/** The origins of a `peer` message: those asked about (`origins`) or those connected. */
export function peerList(e: EventEnvelope, key: "origins" | "connected"): string[] {
  return (e.headers[key] ?? "").split(",").filter(Boolean);
}

/**
 * The `ready` envelope that hands an application its virtual topic. A minimesh monitor adds how
 * many other instances of the application's group hold a lease (`peers`), so that the
 * application knows when it has heard their routes (a Java monitor does not: then it waits for
 * the answers to its join to stop coming).
 */
export function readyMessage(topic: string, monitorVersion: string, peers?: number): EventEnvelope {
  const headers: Record<string, string> = { topic, version: monitorVersion };
  if (peers !== undefined) headers.peers = String(peers);
  return new EventEnvelope({ to: READY, headers });
}

/** What a `ready` envelope hands over, or undefined when `e` is no `ready`. */
export function readyOf(e: EventEnvelope): { topic: string; peers?: number } | undefined {
  if (e.to !== READY || !e.headers.topic) return undefined;
  const peers = Number(e.headers.peers); // NaN when absent (a Java monitor's ready)
  return Number.isInteger(peers) && peers >= 0
    ? { topic: e.headers.topic, peers }
    : { topic: e.headers.topic };
}

/** Whether a text frame is a JSON keep-alive (the form of the Java original's older clients). */
export function isTextKeepAlive(data: string): boolean {
  try {
    return (JSON.parse(data) as { type?: unknown } | null)?.type === APP_MESSAGE.KEEP_ALIVE;
  } catch {
    return false;
  }
}
