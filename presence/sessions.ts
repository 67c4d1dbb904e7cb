/**
 * The websocket sessions of one monitor: who is connected, the handshake (`info`, checked
 * strictly), keep-alives (coalesced before they reach Kafka), and the limits that keep a hostile
 * client from hurting others (pending handshakes, frames per second, frame size, idle time).
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import { logger } from "../bus/_log.ts";
import { randomHex32 } from "../bus/_ids.ts";
import { isOriginId } from "../bus/route.ts";
import { isoSeconds } from "../protocol/format.ts";
import type { ServerSocket, SocketHandlers } from "../runtime/server.ts";
import type { ConnectionInfo } from "./lease_table.ts";
import type { MonitorMessage } from "./control.ts";
import type { MonitorSettings } from "./settings.ts";
import { IDENTITY_HEADER, identityVerifier, NOT_OWNER } from "../protocol/credentials.ts";
import {
  APP_MESSAGE,
  CLOSE,
  CLOSE_MONITOR_SILENT,
  isTextKeepAlive,
  MAX_PEERS_PER_QUERY,
  peerList,
  peerMessage,
} from "../protocol/presence.ts";

const log = logger("presence");

/** The websocket path prefix; the rest of the path is the app's origin id. */
export const PRESENCE_PATH = "/ws/presence/";
/** The largest websocket frame a monitor reads. */
export const MAX_FRAME = 65_536;
const PERSONALITIES = new Set(["APP", "REST", "RESOURCES"]);
/**
 * An application that closes with {@link CLOSE_MONITOR_SILENT} goes to another monitor with its
 * lease: its record is released this much later, by when its new session has replaced it (a
 * release of a replaced session changes nothing), so that no leave goes to its peers.
 */
const MOVING_GRACE_MS = 5000;

/** One application's websocket. */
export interface Session {
  readonly id: string;
  readonly origin: string;
  readonly socket: ServerSocket;
  readonly opened: number;
  lastSeen: number;
  seq: number;
  info?: ConnectionInfo;
  claimed: boolean;
  /** The lease the application says it holds (`topic` in its `info`), to be given back if free. */
  hint?: string;
  closing: boolean;
  /** Start of the current one-second window, and frames received in it. */
  windowStart: number;
  frames: number;
  /** When this session's last keep-alive was written to Kafka. */
  published: number;
  /** The quotas this session counts against once it sent `info` (its address, its token). */
  quotas?: string[];
  /** When its last `stats` report was taken. */
  reported?: number;
}

/** What the sessions need of their monitor. */
export interface SessionsContext {
  settings: MonitorSettings;
  /** The monitor's origin id. */
  monitor: string;
  /** Whether the monitor accepts applications now. */
  ready(): boolean;
  /** Writes messages to the monitors' channel; rejects (after logging) when Kafka fails. */
  publish(messages: MonitorMessage[]): Promise<void>;
  /**
   * What claims a virtual topic for the session: a claim, or nothing yet (it waits for the Java
   * monitors' lock, see java_monitor.ts); undefined when it was closed (none free).
   */
  claim(s: Session): MonitorMessage[] | undefined;
  /** The verifier a session of `origin` must carry now, if another instance owns it. */
  ownerOf(origin: string): string | undefined;
  /** Which mesh token the client offered (`token 1`, ...), or undefined without tokens. */
  credential(protocols: readonly string[]): string | undefined;
  /** Takes a session's `stats` report (the body of its frame). @throws {TypeError} When invalid. */
  report(s: Session, body: unknown): void;
  /** Whether the mesh's table holds a connection of `origin` now (for a `peer` question). */
  connected(origin: string): boolean;
}

/** The sessions of one monitor. */
export class Sessions {
  readonly #c: SessionsContext;
  readonly #bySocket = new Map<ServerSocket, Session>();
  readonly #byOrigin = new Map<string, Session>();
  /** Sessions that sent `info` (and so hold or claim a lease), per address and per token. */
  readonly #counts = new Map<string, number>();
  /** Sessions this monitor closed or refused, per close code (for /metrics). */
  readonly closed = new Map<number, number>();
  /** Sessions without `info` yet, oldest first. */
  readonly #pending = new Set<Session>();
  #stopping = false;

  /** Sessions of the monitor described by `context`. */
  constructor(context: SessionsContext) {
    this.#c = context;
  }

  /** The websocket callbacks for the server. */
  readonly handlers: SocketHandlers = {
    open: (socket, path) => this.#onOpen(socket, path),
    message: (socket, data) => this.#onMessage(socket, data),
    close: (socket, code, reason) => this.#onClose(socket, code, reason),
  };

  /** The session of `origin` on this monitor (one that sent its `info`). */
  of(origin: string): Session | undefined {
    return this.#byOrigin.get(origin);
  }

  /** Open sessions that have not sent their `info` yet (each will ask for a lease). */
  get unannounced(): number {
    return this.#pending.size;
  }

  /** The open sessions that have sent their `info`. */
  joined(): Session[] {
    return [...this.#bySocket.values()].filter((s) => s.info !== undefined && !s.closing);
  }

  /** Closes a session (once), logging why. */
  drop(s: Session, code: number, reason: string): void {
    if (s.closing) return;
    s.closing = true;
    this.#count(code);
    log.warn("Closing {origin} ({code}): {reason}", { origin: s.origin, code, reason });
    s.socket.close(code, reason);
  }

  /**
   * Closes every session with 1001 (going away) and publishes no `del`: the monitor is handing
   * its sessions over, and their leases stay for the applications to reconnect elsewhere.
   */
  closeAll(reason: string): void {
    this.#stopping = true;
    for (const s of this.#bySocket.values()) {
      s.closing = true;
      s.socket.close(CLOSE.GOING_AWAY, reason);
    }
  }

  /** The message that releases a session's record and lease. */
  del(s: Session, reason: string): MonitorMessage {
    return { type: "del", origin: s.origin, session: s.id, monitor: this.#c.monitor, reason };
  }

  /** Closes sessions that never completed the handshake or went silent. */
  tick(now: number): void {
    const s = this.#c.settings;
    for (const session of this.#bySocket.values()) {
      if (session.closing) continue;
      if (session.info === undefined && now - session.opened > s.handshakeTimeout * 1000) {
        this.drop(session, CLOSE.TRY_AGAIN, "handshake not completed");
      } else if (now - session.lastSeen > s.idleTimeout * 1000) {
        this.drop(session, CLOSE.BAD_DATA, `Idle for ${s.idleTimeout} seconds`);
      }
    }
  }

  #onOpen(socket: ServerSocket, path: string): void {
    // An origin id is plain ASCII: anything percent-encoded is invalid, and never decoded.
    const token = path.slice(PRESENCE_PATH.length);
    const refuse = (code: number, reason: string) => {
      log.warn("Refused websocket {token}: {reason}", { token: token.slice(0, 80), reason });
      this.#count(code);
      socket.close(code, reason);
    };
    const { maxConnections, maxPending, maxPendingPerAddress } = this.#c.settings;
    if (!this.#c.ready()) return refuse(CLOSE.TRY_AGAIN, "Starting up");
    if (!isOriginId(token)) {
      return refuse(CLOSE.POLICY, `Invalid origin id "${token.slice(0, 60)}"`);
    }
    if (this.#bySocket.size - this.#pending.size >= maxConnections) {
      return refuse(CLOSE.TRY_AGAIN, `Too many connections (${maxConnections})`);
    }
    // Only a session past its `info` holds an origin: a connection that never sends one (a
    // squatter of someone else's origin) must not lock the owner out.
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
    // Over either limit the oldest pending session goes: of this address first, so that one
    // address holds at most its share of them and cannot push out the others'.
    const address = socket.remoteAddress ?? "";
    let mine: Session | undefined, fromAddress = 0;
    for (const p of this.#pending) {
      if ((p.socket.remoteAddress ?? "") !== address) continue;
      mine ??= p;
      fromAddress++;
    }
    const oldest = fromAddress >= maxPendingPerAddress
      ? mine
      : this.#pending.size >= maxPending
      ? this.#pending.values().next().value
      : undefined;
    if (oldest !== undefined) {
      this.#pending.delete(oldest);
      this.drop(oldest, CLOSE.TRY_AGAIN, "handshake not completed (too many pending sessions)");
    }
    this.#bySocket.set(socket, s);
    this.#pending.add(s);
    log.info("Member {origin} connected", { origin: token });
  }

  #count(code: number): void {
    this.closed.set(code, (this.closed.get(code) ?? 0) + 1);
  }

  #onMessage(socket: ServerSocket, data: Uint8Array | string): void {
    const s = this.#bySocket.get(socket);
    if (s === undefined || s.closing) return;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > MAX_FRAME) {
      return this.drop(s, CLOSE.TOO_BIG, `Frame of ${size} bytes is over ${MAX_FRAME}`);
    }
    const now = Date.now();
    const { maxFramesPerSecond, keepAlivePublishInterval } = this.#c.settings;
    s.lastSeen = now;
    if (now - s.windowStart >= 1000) {
      s.windowStart = now;
      s.frames = 0;
    }
    if (++s.frames > maxFramesPerSecond) {
      return this.drop(s, CLOSE.POLICY, `Too many frames (over ${maxFramesPerSecond} per second)`);
    }
    if (typeof data === "string") {
      // Text frames are JSON keep-alives in the Java original; anything else is garbage.
      if (!isTextKeepAlive(data)) {
        return this.drop(s, CLOSE.BAD_DATA, "Invalid text frame: expected a JSON keep-alive");
      }
      return;
    }
    let e: EventEnvelope;
    try {
      e = EventEnvelope.fromBytes(data);
    } catch (err) {
      return this.drop(s, CLOSE.BAD_DATA, (err as Error).message.slice(0, 120));
    }
    s.seq++;
    if (e.to === APP_MESSAGE.INFO) return this.#onInfo(s, e.headers);
    if (e.to === APP_MESSAGE.KEEP_ALIVE) {
      if (s.info === undefined) return this.drop(s, CLOSE.BAD_DATA, "keep-alive before info");
      // Coalesced: a flood of keep-alives must not become a flood of records.
      if (now - s.published < keepAlivePublishInterval * 1000) return;
      s.published = now;
      s.info = { ...s.info, seq: s.seq, updated: isoSeconds(s.lastSeen) };
      this.#c.publish([{ type: "put", info: s.info }]).catch(() => {});
      return;
    }
    if (e.to === APP_MESSAGE.STATS) {
      if (s.info === undefined) return this.drop(s, CLOSE.BAD_DATA, "stats before info");
      // One a second at most is taken; an application sends one every five.
      if (now - (s.reported ?? 0) < 1000) return;
      s.reported = now;
      try {
        this.#c.report(s, e.body);
      } catch (err) {
        this.drop(s, CLOSE.BAD_DATA, `Invalid stats: ${(err as Error).message}`.slice(0, 120));
      }
      return;
    }
    if (e.to === APP_MESSAGE.PEER_QUERY) {
      // An application checks the `leave`s it read on Kafka, which anyone who can write there
      // could have forged, with the monitors that hold the table.
      if (s.info === undefined) return this.drop(s, CLOSE.BAD_DATA, "peer before info");
      const id = e.headers.id;
      const asked = peerList(e, "origins");
      if (
        !id || id.length > 40 || asked.length === 0 || asked.length > MAX_PEERS_PER_QUERY ||
        !asked.every(isOriginId)
      ) {
        return this.drop(s, CLOSE.BAD_DATA, "Invalid peer query");
      }
      const connected = asked.filter((o) => this.#c.connected(o));
      s.socket.send(peerMessage(id, { connected }).toBytes());
      return;
    }
    this.drop(s, CLOSE.BAD_DATA, `Unknown message ${JSON.stringify(e.to ?? null).slice(0, 60)}`);
  }

  #onInfo(s: Session, h: Record<string, string>): void {
    if (s.info !== undefined) return this.drop(s, CLOSE.POLICY, "info already received");
    if (!h.name || !h.version) return this.drop(s, CLOSE.BAD_DATA, "info needs name and version");
    const { maxGroups } = this.#c.settings;
    // Exactly a decimal integer: " 1 ", "1e0" and "0x1" are refused, not read as 1.
    const group = /^[1-9][0-9]{0,2}$/.test(h.group ?? "") ? Number(h.group) : NaN;
    if (!(group >= 1 && group <= maxGroups)) {
      const given = JSON.stringify(h.group ?? null).slice(0, 40);
      return this.drop(s, CLOSE.BAD_DATA, `Invalid group ${given}: expected 1 to ${maxGroups}`);
    }
    const type = h.type;
    if (!PERSONALITIES.has(type)) {
      const given = JSON.stringify(type ?? null).slice(0, 40);
      return this.drop(
        s,
        CLOSE.BAD_DATA,
        `Invalid type ${given}: expected APP, REST or RESOURCES`,
      );
    }
    // Only the instance that first claimed an origin may claim it again: it proves it with its
    // identity secret, of which the monitors keep only a digest (no secret: compared plainly).
    const secret = h[IDENTITY_HEADER];
    const verifier = secret ? identityVerifier(s.origin, secret.slice(0, 200)) : undefined;
    const owner = this.#c.ownerOf(s.origin);
    if (owner !== undefined && owner !== verifier) {
      return this.drop(s, NOT_OWNER, `Origin ${s.origin} belongs to another instance`);
    }
    const holder = this.#byOrigin.get(s.origin);
    if (holder !== undefined && holder !== s) {
      return this.drop(s, CLOSE.TRY_AGAIN, `Origin ${s.origin} is already connected`);
    }
    if (!this.#withinQuotas(s)) return;
    this.#pending.delete(s);
    this.#byOrigin.set(s.origin, s);
    s.published = s.lastSeen;
    s.hint = h.topic?.slice(0, 200);
    s.info = {
      origin: s.origin,
      name: h.name.slice(0, 200),
      version: h.version.slice(0, 100),
      type,
      group,
      monitor: this.#c.monitor,
      session: s.id,
      created: isoSeconds(s.opened),
      updated: isoSeconds(s.lastSeen),
      seq: s.seq,
      instance: h.instance?.slice(0, 200),
      verifier,
    };
    const messages: MonitorMessage[] = [{ type: "put", info: s.info }];
    if (!s.claimed) {
      const claim = this.#c.claim(s);
      if (claim === undefined) return;
      messages.push(...claim);
    }
    // publish logs the detail; the client hears only that it may try again.
    this.#c.publish(messages).catch(() => this.drop(s, CLOSE.TRY_AGAIN, "Kafka unavailable"));
  }

  #onClose(socket: ServerSocket, code: number, reason: string): void {
    const s = this.#bySocket.get(socket);
    if (s === undefined) return;
    this.#bySocket.delete(socket);
    this.#pending.delete(s);
    if (this.#byOrigin.get(s.origin) === s) this.#byOrigin.delete(s.origin);
    for (const quota of s.quotas ?? []) {
      const n = (this.#counts.get(quota) ?? 1) - 1;
      if (n > 0) this.#counts.set(quota, n);
      else this.#counts.delete(quota);
    }
    log.info("Member {origin} left ({code} {reason})", { origin: s.origin, code, reason });
    if (s.info && !this.#stopping) {
      const del = this.del(s, `websocket closed (${code}${reason ? ` ${reason}` : ""})`);
      const release = () => {
        if (!this.#stopping) this.#c.publish([del]).catch(() => {});
      };
      if (code === CLOSE_MONITOR_SILENT) setTimeout(release, MOVING_GRACE_MS);
      else release();
    }
  }

  // One address, or one mesh token, may not take the partitions for itself: a flood of valid
  // `info`s from one host took all 288 leases before these limits. (Sessions still without
  // `info` are bounded by presence.max.pending, the oldest dropped first.)
  #withinQuotas(s: Session): boolean {
    const { maxPerAddress, maxPerToken } = this.#c.settings;
    const credential = this.#c.credential(s.socket.protocols ?? []);
    const quotas: [string, number, string][] = [
      [`address ${s.socket.remoteAddress ?? ""}`, maxPerAddress, "from one address"],
    ];
    if (credential !== undefined) quotas.push([credential, maxPerToken, `with ${credential}`]);
    for (const [key, max, what] of quotas) {
      if ((this.#counts.get(key) ?? 0) >= max) {
        this.drop(s, CLOSE.TRY_AGAIN, `Too many connections ${what} (${max})`);
        return false;
      }
    }
    for (const [key] of quotas) this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    s.quotas = quotas.map(([key]) => key);
    return true;
  }
}
