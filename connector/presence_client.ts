/**
 * The application side of the presence protocol: a websocket to one of the presence monitors,
 * tried in turn, reconnecting with backoff; `info` on connect, keep-alives while connected,
 * and the `ready` that leases this instance its virtual topic (docs/wire.md, "The presence websocket").
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import { elapsedText, localTimestamp } from "../protocol/format.ts";
import { logger } from "../bus/_log.ts";
import { watchSilence } from "../bus/_on_time.ts";
import type { TickTimer } from "../bus/_on_time.ts";
import { WebSocketClient } from "#runtime";
import type { WebSocketFactory } from "../runtime/server.ts";
import {
  credentialProtocols,
  IDENTITY_HEADER,
  MESH_PROTOCOL,
  NOT_OWNER,
  UNAUTHORIZED,
} from "../protocol/credentials.ts";
import {
  APP_MESSAGE,
  appMessage,
  CLOSE_MONITOR_SILENT,
  MAX_PEERS_PER_QUERY,
  peerList,
  peerMessage,
  readyOf,
  statsMessage,
} from "../protocol/presence.ts";
import { STATS_INTERVAL_MS } from "../protocol/report.ts";
import type { Reports } from "../protocol/report.ts";

const log = logger("presence-client");

/**
 * How often a report that is due at once (see Reports.urgent) is looked for when the reports
 * cannot say so themselves (`Reports.onUrgent`).
 */
const URGENT_CHECK_MS = 250;
/** The least time between two reports: a monitor takes one a second (by its clock: a margin). */
const REPORT_GAP_MS = 1250;

// Answers everyone waiting on the origins of a question.
function settle(
  batch: Map<string, ((state: PeerState) => void)[]>,
  state: (origin: string) => PeerState,
): void {
  for (const [origin, waiting] of batch) for (const resolve of waiting) resolve(state(origin));
}

/** Close code the application uses when it could not join through its lease (application range). */
export const CLOSE_JOIN_FAILED = 4000;

/** How long an application waits for the answer to a `peer` query (protocol/presence.ts). */
const PEER_QUERY_MS = 2000;
/** Questions go at most this often (a monitor closes a session over 20 frames a second). */
const PEER_QUERY_INTERVAL_MS = 200;
/**
 * Every this long, a minimesh monitor silent for half of it is asked a question (about this
 * instance), whose answer shows it is there; silent for {@link MONITOR_SILENT_MS}, its connection
 * counts as lost (5-8 s after its last frame; 6 s for one that stops answering). A link cut without
 * a close (a partition, a host gone) would otherwise hold the instance on a monitor that cannot
 * hear it until TCP gives up, while that monitor drops it. An idle member's question and answer
 * are most of its wake-ups (every 2 s, they were 1.5 of its 2.8 a second: bench/idle_long.ts); a
 * monitor pings only sessions silent for 4 s, so these keep it from pinging.
 */
const MONITOR_PROBE_MS = 3000;
const MONITOR_SILENT_MS = 5000;
/** A check of the monitor's silence this late counts it again (see #watchMonitor). */
const LATE_TICK_MS = 500;

/**
 * A monitor's answer to {@link PresenceClient.peerState}; `between` when this instance has no
 * monitor connection at the moment (it is reconnecting), so that one may answer soon.
 */
export type PeerState = "connected" | "gone" | "unknown" | "between";

export type { WebSocketFactory };

/** Options of a {@link PresenceClient}. */
export interface PresenceClientOptions {
  /** Monitor URLs such as `ws://127.0.0.1:8080/ws/presence`, tried in turn. */
  urls: string[];
  /** This instance's origin id (the last path segment). */
  origin: string;
  /** The `info` headers: name, version, group, type, and optionally instance. */
  info: Record<string, string>;
  /**
   * The lease this instance holds, if any: sent in `info` as `topic`, so that a monitor that
   * does not know the instance (all monitors restarted) gives it the same lease back if free.
   */
  lease?: () => string | undefined;
  /** Milliseconds between keep-alives. */
  keepAliveMs: number;
  /**
   * Called with the leased topic, and how many peers of the group hold a lease (a minimesh
   * monitor says; a Java one does not); a rejection closes the connection (and it retries).
   * `signal` aborts when this connection closes first: the join must then undo what it started.
   */
  onReady(topic: string, url: string, signal: AbortSignal, peers?: number): Promise<void>;
  /** Called when a connection that was ready ends. */
  onLost(code: number, reason: string): void;
  /** Called on every keep-alive while ready. */
  onKeepAlive(): void;
  /** The WebSocket constructor (default: the runtime adapter's). */
  webSocket?: WebSocketFactory;
  /** The mesh token presented in the handshake (`mesh.tokens`), when the mesh has them. */
  token?: string;
  /**
   * This instance's identity secret, sent in `info`: with it only this instance can claim its
   * origin again (reconnect, move to another monitor). See `identitySecret`.
   */
  identity?: string;
  /**
   * What this instance reports to a minimesh monitor for its dashboard, every
   * {@link STATS_INTERVAL_MS} while ready (see `report.ts`).
   */
  reports?: Reports;
}

/** A connection to the presence monitors that keeps itself up. */
export class PresenceClient {
  readonly #o: PresenceClientOptions;
  readonly #started = new Date();
  #ws: WebSocket | undefined;
  #next = 0;
  #attempt = 0;
  #seq = 0;
  #topic: string | undefined;
  #stopped = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #stopReports: () => void = () => {};
  #liveness: TickTimer | undefined;
  /** Questions sent, by id: who waits for which origin. */
  #queries = new Map<string, Map<string, ((state: PeerState) => void)[]>>();
  /** Origins to ask about in the next question. */
  #toAsk = new Map<string, ((state: PeerState) => void)[]>();
  #askTimer: ReturnType<typeof setTimeout> | undefined;
  #lastAsked = 0;
  #queryId = 0;
  /** When the monitors began refusing this origin as another instance's (0: they do not). */
  #refusedSince = 0;
  #refusalSaid = false;

  /** Creates the client; {@link PresenceClient.start} connects. */
  constructor(options: PresenceClientOptions) {
    if (options.urls.length === 0) throw new RangeError("No presence monitor URL configured");
    for (const url of options.urls) {
      if (!/^wss?:\/\/[^/]+/.test(url)) {
        throw new RangeError(`Invalid presence monitor URL "${url}": expected ws://host:port/...`);
      }
    }
    this.#o = options;
  }

  /** Connects (and keeps reconnecting until stopped). */
  start(): void {
    this.#stopped = false;
    this.#connect();
  }

  /** Closes the connection for good. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#keepAlive);
    this.#stopReports();
    clearInterval(this.#liveness);
    try {
      this.#ws?.close(1000, "Application stopping");
    } catch { /* already closed */ }
  }

  /**
   * Asks the monitor whether `origin` is still in the mesh: `unknown` when this instance's
   * monitor is not a minimesh one (a Java one has no such question) or no answer came in time,
   * `between` while it has no monitor connection. Questions asked together go as one message.
   */
  peerState(origin: string): Promise<PeerState> {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== 1 || this.#topic === undefined) {
      return Promise.resolve(this.#stopped ? "unknown" : "between");
    }
    if (ws.protocol !== MESH_PROTOCOL) return Promise.resolve("unknown");
    return new Promise((resolve) => {
      const waiting = this.#toAsk.get(origin);
      if (waiting !== undefined) waiting.push(resolve);
      else this.#toAsk.set(origin, [resolve]);
      if (this.#askTimer !== undefined) return;
      const wait = Math.max(10, this.#lastAsked + PEER_QUERY_INTERVAL_MS - Date.now());
      this.#askTimer = setTimeout(() => this.#ask(), wait);
    });
  }

  #ask(): void {
    this.#askTimer = undefined;
    this.#lastAsked = Date.now();
    const batch = new Map<string, ((state: PeerState) => void)[]>();
    for (const [origin, waiting] of this.#toAsk) {
      if (batch.size === MAX_PEERS_PER_QUERY) break;
      batch.set(origin, waiting);
      this.#toAsk.delete(origin);
    }
    if (this.#toAsk.size > 0) {
      this.#askTimer = setTimeout(() => this.#ask(), PEER_QUERY_INTERVAL_MS);
    }
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== 1) return settle(batch, () => "unknown");
    const id = String(++this.#queryId);
    this.#queries.set(id, batch);
    setTimeout(() => this.#answered(id, undefined), PEER_QUERY_MS);
    ws.send(peerMessage(id, { origins: [...batch.keys()] }).toBytes());
  }

  // The monitor's answer to question `id` (the origins it holds), or undefined when none came.
  #answered(id: string, connected: Set<string> | undefined): void {
    const batch = this.#queries.get(id);
    if (batch === undefined) return;
    this.#queries.delete(id);
    settle(
      batch,
      (origin) =>
        connected === undefined ? "unknown" : connected.has(origin) ? "connected" : "gone",
    );
  }

  #connect(): void {
    if (this.#stopped) return;
    const base = this.#o.urls[this.#next++ % this.#o.urls.length].replace(/\/+$/, "");
    const url = `${base}/${this.#o.origin}`;
    const Ws = this.#o.webSocket ?? WebSocketClient;
    let ws: WebSocket;
    try {
      ws = new Ws(url, credentialProtocols(this.#o.token));
    } catch (e) {
      log.warn("Cannot open {url}: {message}", { url, message: (e as Error).message });
      return this.#scheduleRetry();
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    let wasReady = false;
    let joining = false;
    let heardAt = Date.now();
    const closed = new AbortController();
    ws.onopen = () => {
      log.info("Connected {origin}, {url}", { origin: this.#o.origin, url: base });
      this.#send(APP_MESSAGE.INFO);
    };
    ws.onmessage = (m) => {
      heardAt = Date.now();
      if (typeof m.data === "string") return;
      let e: EventEnvelope;
      try {
        e = EventEnvelope.fromBytes(new Uint8Array(m.data as ArrayBuffer));
      } catch (err) {
        log.warn("Monitor sent an invalid frame: {message}", { message: (err as Error).message });
        return;
      }
      if (e.to === APP_MESSAGE.PEER_QUERY) {
        return this.#answered(e.headers.id ?? "", new Set(peerList(e, "connected")));
      }
      const ready = readyOf(e);
      if (ready === undefined) return;
      const topic = ready.topic;
      if (joining || wasReady) {
        log.warn("Ignoring a second ready ({topic}) on one connection", { topic });
        return;
      }
      joining = true;
      this.#o.onReady(topic, base, closed.signal, ready.peers).then(() => {
        if (this.#ws !== ws) return;
        wasReady = true;
        this.#topic = topic;
        this.#attempt = 0;
        this.#send(APP_MESSAGE.KEEP_ALIVE);
        let keptAt = Date.now();
        const keepAlive = () => {
          keptAt = Date.now();
          this.#send(APP_MESSAGE.KEEP_ALIVE);
          this.#o.onKeepAlive();
        };
        clearInterval(this.#keepAlive);
        const reportDue = this.#startReports(ws);
        if (ws.protocol === MESH_PROTOCOL) {
          // One timer for all a minimesh monitor gets: an idle member's CPU is mostly its
          // wake-ups (bench/idle_bench.ts). Its keep-alive goes at the check before it is due.
          this.#watchMonitor(
            ws,
            () => heardAt,
            (reason) => onClosed({ code: CLOSE_MONITOR_SILENT, reason }),
            (now) => {
              if (now - keptAt >= this.#o.keepAliveMs - MONITOR_PROBE_MS) keepAlive();
              reportDue?.(now);
            },
          );
        } else this.#keepAlive = setInterval(keepAlive, this.#o.keepAliveMs);
      }).catch((err) => {
        log.error("Joining through {topic} failed: {message}", {
          topic,
          message: (err as Error).message,
        });
        // A client may close only with 1000 or 3000-4999 (Deno's WebSocket throws otherwise).
        try {
          ws.close(CLOSE_JOIN_FAILED, "Join failed");
        } catch (e) {
          log.warn("Cannot close the monitor connection: {message}", {
            message: (e as Error).message,
          });
        }
      });
    };
    ws.onerror = () => {}; // the close event that follows says what happened
    // Once per connection: a silent monitor's connection is given up before its close event,
    // which may come much later (or never, over a cut link).
    let ended = false;
    const onClosed = (c: { code: number; reason: string }) => {
      if (ended) return;
      ended = true;
      if (c.code === CLOSE_MONITOR_SILENT) {
        try {
          ws.close(c.code, c.reason);
        } catch { /* closing already */ }
      }
      if (this.#ws === ws) this.#ws = undefined;
      closed.abort(new Error(`monitor connection closed (${c.code})`));
      clearInterval(this.#keepAlive);
      this.#stopReports();
      clearInterval(this.#liveness);
      this.#topic = undefined;
      for (const id of [...this.#queries.keys()]) this.#answered(id, undefined);
      if (this.#stopped) return;
      if (wasReady) this.#o.onLost(c.code, c.reason);
      if (c.code === UNAUTHORIZED) {
        log.error(
          "Monitor {url} refused this instance's mesh credential ({why}): check mesh.tokens",
          { url: base, why: this.#o.token ? "a token it does not accept" : "none given" },
        );
      }
      const refusedAgain = c.code === NOT_OWNER && this.#refusedSince !== 0;
      if (c.code === NOT_OWNER) this.#notOwner(base);
      else [this.#refusedSince, this.#refusalSaid] = [0, false];
      log[refusedAgain ? "debug" : "info"](
        "Presence connection to {url} closed ({code} {reason})",
        {
          url: base,
          code: c.code,
          reason: c.reason || "no reason",
        },
      );
      // A monitor that stops gracefully (1001) hands its sessions over, and a silent one is
      // likely cut off: go to the next at once.
      this.#scheduleRetry((c.code === 1001 || c.code === CLOSE_MONITOR_SILENT) && wasReady);
    };
    ws.onclose = onClosed;
  }

  // Asks a minimesh monitor that went quiet whether it holds this instance (any answer will
  // do), and gives the connection up when nothing at all came for MONITOR_SILENT_MS. A Java
  // monitor has no such question, and is not watched. Idle, the question and its answer are the
  // connection's only frames (the monitor pings no one it heard from within 4 s): one wake-up
  // each way per MONITOR_PROBE_MS.
  // `tick` runs on each check that came on time (as the keep-alive and the report do).
  #watchMonitor(
    ws: WebSocket,
    heardAt: () => number,
    lost: (why: string) => void,
    tick: (now: number) => void,
  ): void {
    clearInterval(this.#liveness);
    if (ws.protocol !== MESH_PROTOCOL) return;
    // From the end of the join (the monitor had nothing to say while this instance joined), and
    // again after this process stood still: the monitor's frames may be unread yet, behind
    // everything else that came meanwhile (a fleet of 75 members in one overloaded process
    // gave up a monitor that answered).
    this.#liveness = watchSilence(MONITOR_PROBE_MS, LATE_TICK_MS, heardAt, (silent, now) => {
      if (silent >= MONITOR_SILENT_MS) {
        log.warn("Monitor silent for {s} s: trying another", { s: Math.round(silent / 1000) });
        return lost(`monitor silent for ${silent} ms`);
      }
      if (ws.readyState !== 1) return;
      tick(now);
      if (silent < MONITOR_PROBE_MS / 2) return;
      // Its answer is not awaited: any frame from the monitor counts.
      ws.send(peerMessage(`live-${++this.#queryId}`, { origins: [this.#o.origin] }).toBytes());
    });
  }

  // Refused as another instance's origin: normal for a minute after this appId's previous
  // process went elsewhere (the monitors hold it for that instance), so one warning, then an
  // error once if it lasts longer than the hold: then another instance really has the origin.
  #notOwner(url: string): void {
    const now = Date.now();
    const first = this.#refusedSince === 0;
    if (first) this.#refusedSince = now;
    const s = Math.round((now - this.#refusedSince) / 1000);
    const args = { url, origin: this.#o.origin, s };
    if (first) {
      log.warn(
        "Monitor {url} holds origin {origin} for another instance: this appId's previous " +
          "process, for up to a minute after it went (give each process of this appId the same " +
          "mesh.identity.secret to take it back at once), or another process with this appId " +
          "that runs now; retrying",
        args,
      );
    } else if (!this.#refusalSaid && s > 90) {
      this.#refusalSaid = true;
      log.error(
        "Origin {origin} still belongs to another instance after {s} s: another process " +
          "with this appId runs in the mesh",
        args,
      );
    } else {
      log.debug("Monitor {url} still holds origin {origin} for another instance ({s} s)", args);
    }
  }

  // Reports for the dashboard go only to a minimesh monitor (a Java one would close the
  // connection on an unknown message), the first at once, with the routes. Returns what the
  // monitor check calls to send the regular ones, unless they have a timer of their own.
  #startReports(ws: WebSocket): ((now: number) => void) | undefined {
    const reports = this.#o.reports;
    this.#stopReports();
    if (reports === undefined || ws.protocol !== MESH_PROTOCOL) return;
    reports.reset();
    let last = 0;
    let soon: ReturnType<typeof setTimeout> | undefined;
    const report = () => {
      if (ws.readyState !== 1) return;
      last = Date.now();
      ws.send(statsMessage(reports.next()).toBytes());
    };
    // A change of Kafka's reachability is reported at once (or as soon as the monitor takes a
    // report), the rest every STATS_INTERVAL_MS.
    const urgent = () => {
      if (soon !== undefined || !reports.urgent()) return;
      const wait = last + REPORT_GAP_MS - Date.now();
      if (wait <= 0) return report();
      soon = setTimeout(() => {
        soon = undefined;
        if (reports.urgent()) report();
      }, wait);
    };
    report();
    const off = reports.onUrgent?.(urgent);
    // Told of urgent reports, the regular ones go with the first monitor check STATS_INTERVAL_MS
    // after the last report (every 6 s; a timer of their own woke an idle member once more, and
    // one 4 times a second cost it 1.2 ms of CPU a second); else it looks for them every
    // URGENT_CHECK_MS.
    const timer = off !== undefined ? undefined : setInterval(() => {
      if (Date.now() - last >= STATS_INTERVAL_MS) report();
      else urgent();
    }, URGENT_CHECK_MS);
    this.#stopReports = () => {
      clearInterval(timer);
      clearTimeout(soon);
      off?.();
      this.#stopReports = () => {};
    };
    if (off !== undefined) {
      return (now) => {
        if (now - last >= STATS_INTERVAL_MS) report();
      };
    }
  }

  #scheduleRetry(now = false): void {
    // 0.5 s, 1 s, 2 s, 4 s, then every 5 s, cycling through the monitors; each from half to
    // all of it at random, so that a fleet refused at once does not come back at once.
    const delay = now ? 0 : Math.min(5000, 500 * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#connect(), delay);
  }

  #send(type: typeof APP_MESSAGE.INFO | typeof APP_MESSAGE.KEEP_ALIVE): void {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== 1) return;
    // `created` and `elapsed` in the Java original's forms: a Java monitor shows them as they are.
    const headers: Record<string, string> = {
      created: localTimestamp(this.#started.getTime()),
      seq: String(++this.#seq),
      ...this.#o.info,
    };
    if (type === APP_MESSAGE.INFO) {
      const lease = this.#o.lease?.();
      if (lease !== undefined) headers.topic = lease;
      // Only a minimesh monitor keeps no more than a digest of it.
      if (this.#o.identity && ws.protocol === MESH_PROTOCOL) {
        headers[IDENTITY_HEADER] = this.#o.identity;
      }
    } else {
      headers.elapsed = elapsedText(Date.now() - this.#started.getTime());
      if (this.#topic) headers.topic = this.#topic;
    }
    ws.send(appMessage(type, headers).toBytes());
  }
}
