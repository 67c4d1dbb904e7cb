/**
 * The distributed routing table's upkeep (docs/wire.md, "The routing table"): registry messages on the
 * closed user group's partition of `service.monitor` tell who joined, which public routes each
 * peer serves, who is alive and who left. This instance announces itself the same way.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";
import { logger } from "../bus/_log.ts";
import { inboxOf } from "../bus/platform.ts";
import { isOriginId, routeProblem } from "../bus/route.ts";
import type { Platform } from "../bus/platform.ts";
import type { InRecord, KafkaClient } from "../kafka/client.ts";
import { eventRecord } from "../kafka/records.ts";
import { isRegistry, registryMessage } from "../protocol/registry.ts";
import type { RegistryType } from "../protocol/registry.ts";
import type { LifeCycle } from "./life_cycle.ts";
import type { RoutingTable } from "./routing_table.ts";
import type { PeerState } from "./presence_client.ts";

const log = logger("connector");

// The routes of an `add` (route -> personality), refusing anything but a map of valid route
// names to strings.
function routeMap(body: unknown): Record<string, string> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw new TypeError("routes must be a map");
  const routes: Record<string, string> = {};
  for (const [route, p] of Object.entries(body)) {
    const problem = routeProblem(route);
    if (problem !== undefined) throw new TypeError(`route ${route.slice(0, 80)}: ${problem}`);
    if (typeof p !== "string") throw new TypeError(`route ${route}: personality must be text`);
    routes[route] = p.slice(0, 200);
  }
  return routes;
}

const STALL_MS = 90_000;
/** The waits before asking the monitors again about a peer a leave names and they hold. */
const LEAVE_RECHECK_MS = [250, 500, 1000];
/** The longest a join waits for the peers' routes (a peer that died has not left yet). */
const HEAR_MAX_MS = 3000;
/** Without a count (a Java monitor): the join waits until no new peer answered for this long. */
const HEAR_QUIET_MS = 400;
/** The least time between two of this instance's route messages (the Java original's). */
const EXCHANGE_MIN_MS = 100;
/** The most, so that a join storm's answers stay few however large the group. */
const EXCHANGE_MAX_MS = 1000;
/** How much longer the wait grows per peer (4 ms: 100 peers, 400 ms; 250 or more, 1 s). */
const EXCHANGE_PER_PEER_MS = 4;

/** What the peer registry needs of its connector. */
export interface PeersContext {
  platform: Platform;
  kafka: KafkaClient;
  table: RoutingTable;
  lifeCycle: LifeCycle;
  monitorTopic: string;
  group: number;
  /** `name, PERSONALITY` as peers show this instance's routes. */
  personality: string;
  /** The leased virtual topic while in the mesh, else undefined. */
  topic(): string | undefined;
  /** What the presence monitors say of a peer (see `PresenceClient.peerState`). */
  peerState(origin: string): Promise<PeerState>;
}

/** Keeps the routing table from the group's registry messages and announces this instance. */
export class Peers {
  readonly #c: PeersContext;
  #exchangeTimer: ReturnType<typeof setTimeout> | undefined;
  #exchangeAsk = false;
  /**
   * Peers met since this instance last sent its routes: they may lack them. (A peer met before
   * read that message, which came after the peer's first record, hence after it began reading.)
   */
  readonly #uncovered = new Set<string>();
  /** This instance's own join or keep-alive came back since it last sent its routes. */
  #owesRoutes = false;
  #drainSeen = false;
  /** Peers whose join was logged (once their name and version were known). */
  readonly #named = new Set<string>();
  /** Peers whose `leave` is being checked with the monitors. */
  readonly #checking = new Set<string>();
  /** Peers whose routes came (an `add`, empty for a peer without public routes). */
  readonly #routesFrom = new Set<string>();
  /** Called when a peer's routes came for the first time (see {@link Peers.heard}). */
  readonly #onRoutes = new Set<() => void>();

  /** The registry of one connector. */
  constructor(context: PeersContext) {
    this.#c = context;
  }

  #me(): string {
    return this.#c.platform.origin;
  }

  // A registry message to the group.
  #toGroup(type: RegistryType, headers: Record<string, string>, body?: unknown): Promise<void> {
    const { group, monitorTopic, kafka } = this.#c;
    const e = registryMessage(group, type, headers, body);
    return kafka.send([eventRecord(monitorTopic, group, `monitor-${group}`, e)]);
  }

  #identity(): Record<string, string> {
    const p = this.#c.platform;
    return {
      origin: p.origin,
      topic: this.#c.topic() ?? "",
      name: p.name,
      version: p.version,
    };
  }

  /** Announces this instance's join (its public routes follow on the peers' exchange). */
  announceJoin(): Promise<void> {
    return this.#toGroup("join", this.#identity());
  }

  /**
   * Tells the group this instance is draining: peers send new requests to other instances.
   * (A `drain` registry message; Java peers do not know it and go on until the leave.)
   */
  announceDrain(): Promise<void> {
    this.#drainSeen = false;
    return this.#toGroup("drain", this.#identity());
  }

  /** Whether this instance's own `drain` came back on the group's partition (peers have it). */
  get drainSeen(): boolean {
    return this.#drainSeen;
  }

  /**
   * Resolves once the routes of `expected` peers came (what the monitor said), or, without a
   * count, once no new peer has answered for a moment; within 3 s in any case, or when `signal`
   * aborts.
   */
  heard(expected: number | undefined, signal: AbortSignal): Promise<void> {
    const from = this.#routesFrom;
    if (signal.aborted || (expected !== undefined && from.size >= expected)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let quiet: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(cap);
        clearTimeout(quiet);
        this.#onRoutes.delete(met);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const met = () => {
        if (expected !== undefined) {
          if (from.size >= expected) done();
          return;
        }
        clearTimeout(quiet);
        quiet = setTimeout(done, HEAR_QUIET_MS);
      };
      const cap = setTimeout(() => {
        if (expected !== undefined) {
          log.info("Joined having heard the routes of {n} of {expected} peers in {s} s", {
            n: from.size,
            expected,
            s: HEAR_MAX_MS / 1000,
          });
        }
        done();
      }, HEAR_MAX_MS);
      if (expected === undefined) quiet = setTimeout(done, HEAR_QUIET_MS);
      this.#onRoutes.add(met);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Tells the group this instance is alive. */
  keepAlive(): void {
    if (this.#c.topic() === undefined) return;
    this.#toGroup("keep-alive", this.#identity()).catch(() => {});
  }

  /** Tells the group about a public route registered or released here. */
  routeChanged(route: string, added: boolean): void {
    const me = this.#me();
    const { table, personality } = this.#c;
    if (added) table.addRoute(route, me, personality);
    else table.removeRoute(route, me);
    const headers: Record<string, string> = { origin: me, route };
    if (added) headers.personality = personality;
    headers.final = "true";
    this.#toGroup(added ? "add" : "unregister", headers).catch(() => {});
  }

  // My public routes to the group; `exchange` asks peers for theirs. One message answers every
  // join and exchange that came meanwhile, and everyone reads it: at most one per 100 ms, and per
  // up to a second in a large group (each message is read by every peer, so a join storm of N
  // would otherwise cost N x 10 messages a second, each read N times).
  #sendMyRoutes(exchange: boolean): void {
    this.#exchangeAsk ||= exchange;
    if (this.#exchangeTimer !== undefined) return;
    const wait = Math.min(
      EXCHANGE_MAX_MS,
      Math.max(EXCHANGE_MIN_MS, this.#c.table.peerCount * EXCHANGE_PER_PEER_MS),
    );
    this.#exchangeTimer = setTimeout(() => {
      this.#exchangeTimer = undefined;
      if (this.#c.topic() === undefined) return;
      const headers = this.#identity();
      if (this.#exchangeAsk) headers.exchange = "true";
      this.#exchangeAsk = false;
      const covered = [...this.#uncovered];
      this.#uncovered.clear();
      this.#owesRoutes = false;
      const routes: Record<string, string> = {};
      for (const [route, p] of this.#c.table.routesOf(this.#me())) routes[route] = p;
      this.#toGroup("add", headers, routes).catch(() => {
        // Not written (Kafka away): whoever it would have told may still ask.
        for (const origin of covered) this.#uncovered.add(origin);
        this.#owesRoutes = true;
      });
    }, wait);
  }

  // An exchange asks for my routes. The Java original always answers; in a group every
  // member's answer to a join carries an exchange, and each answer of each other member to
  // it is one more message read by all. An exchange from a peer that read my routes since it
  // met me needs none, unless my own join or keep-alive made it (it dropped me and met me
  // again by that record).
  #onExchange(origin: string): void {
    if (this.#owesRoutes || this.#uncovered.has(origin)) this.#sendMyRoutes(false);
  }

  /** Stops the pending route exchange. */
  stop(): void {
    clearTimeout(this.#exchangeTimer);
    this.#exchangeTimer = undefined;
  }

  /** Handles one record of the group's partition; anything invalid is logged and skipped. */
  onRecord(r: InRecord): void {
    if (r.headers._event_ === undefined) return;
    let e: EventEnvelope;
    try {
      e = EventEnvelope.fromBytes(r.value);
    } catch (err) {
      log.warn("Skipping group record {offset}: {message}", {
        offset: r.offset,
        message: (err as Error).message,
      });
      return;
    }
    if (!isRegistry(e)) return;
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
    const me = this.#me();
    if (!origin) throw new TypeError("no origin header");
    if (!isOriginId(origin)) {
      throw new TypeError(`invalid origin ${JSON.stringify(origin.slice(0, 60))}`);
    }
    const now = Date.now();
    // Checked against the protocol's types: a misspelt case does not compile.
    switch (h.type as RegistryType | undefined) {
      case "join":
        if (origin === me) {
          this.#owesRoutes = true;
          return;
        }
        this.#meet(origin, h, now);
        this.#sendMyRoutes(true);
        // A Java peer records an origin from a join or keep-alive, or from routes it adds: an
        // instance without public routes would stay unknown to it (its replies to us dropped,
        // "Route temporary.inbox@... not found") until our next keep-alive, ~30 s later.
        if (this.#c.table.routesOf(me).size === 0) this.keepAlive();
        return;
      case "add": {
        if (origin === me) return;
        // Checked whole before anything is taken: a malformed message changes nothing.
        const routes = routeMap(h.route ? { [h.route]: h.personality ?? "" } : body);
        this.#meet(origin, h, now);
        for (const [route, p] of Object.entries(routes)) this.#addRoute(route, origin, p);
        if (!this.#routesFrom.has(origin)) {
          this.#routesFrom.add(origin);
          for (const heard of [...this.#onRoutes]) heard();
        }
        if (h.exchange === "true") this.#onExchange(origin);
        return;
      }
      case "unregister":
        if (origin === me || !h.route) return;
        if (this.#c.table.removeRoute(h.route, origin)) {
          log.info("{route} {origin} unregistered", { route: h.route, origin });
        }
        return;
      case "keep-alive":
        if (origin === me) {
          this.#owesRoutes = true;
          return this.#removeStalled(now);
        }
        if (this.#meet(origin, h, now)) this.#sendMyRoutes(true);
        return;
      case "leave":
        if (origin !== me) this.#onLeave(origin);
        return;
      case "drain":
        if (origin === me) {
          if (h.by !== "monitor") this.#drainSeen = true;
        } else if (this.#c.table.peer(origin) !== undefined) {
          const byMonitor = h.by === "monitor";
          if (!this.#c.table.setDraining(origin, true, byMonitor ? "kafka" : "stopping")) return;
          if (!byMonitor) {
            log.info("Peer {origin} is draining: new requests go to other instances", { origin });
            return;
          }
          // Its monitor says it cannot reach Kafka: what waits on it and may go elsewhere does.
          log.info("Peer {origin} cannot reach Kafka: new requests go to other instances", {
            origin,
          });
          this.retryElsewhere(origin, "cannot reach Kafka");
        }
        return;
      case "undrain":
        if (origin !== me && this.#c.table.setDraining(origin, false, "kafka")) {
          log.info("Peer {origin} reaches Kafka again: it takes requests again", { origin });
          this.retryOnReturn(origin);
        }
        return;
    }
  }

  // Records a peer; logs and announces it the first time it has a name. True when new.
  #meet(origin: string, h: Record<string, string>, now: number): boolean {
    const { table } = this.#c;
    const isNew = table.upsertPeer(
      { origin, topic: h.topic ?? "", name: h.name ?? "", version: h.version ?? "" },
      now,
    );
    const p = table.peer(origin)!;
    // A Java peer's join names neither, and its route exchange no version (its keep-alive, sent
    // at once, names both): the log line waits for them, as the Java original's does.
    if (p.name && p.version && !this.#named.has(origin)) {
      this.#named.add(origin);
      log.info("Peer {origin} joins ({name} {version})", {
        origin,
        name: p.name,
        version: p.version,
      });
    }
    if (isNew) {
      this.#uncovered.add(origin);
      this.#c.lifeCycle.notify({ type: "join", origin, name: p.name || undefined });
    }
    return isNew;
  }

  #addRoute(route: string, origin: string, personality: string): void {
    if (this.#c.table.addRoute(route, origin, personality)) {
      log.info("{route} ({personality}.{origin}) registered", { route, personality, origin });
    }
  }

  // A `leave` on Kafka may be forged by anyone who can write to the group's partition: it is
  // believed once the monitors, which hold the table, say the peer is gone (or cannot say). A
  // monitor that has not yet read the departure (the peer left through the other one) is asked
  // again 0.25, 0.75 and 1.75 s later (most know by the first); a peer still connected then is
  // kept. While this instance is between monitors (a leave read while its own monitor was cut
  // off, say) the question waits for the next one, up to 3 s. One question per peer at a time,
  // however many leaves arrive.
  #onLeave(origin: string): void {
    if (this.#c.table.peer(origin) === undefined || this.#checking.has(origin)) return;
    this.#checking.add(origin);
    const later = (ms: number, next: () => Promise<void>) =>
      new Promise((r) => setTimeout(r, ms)).then(next);
    const ask = (again: number, waits: number): Promise<void> =>
      this.#c.peerState(origin).then((state) => {
        if (state === "between" && waits < 3) return later(1000, () => ask(again, waits + 1));
        if (state !== "connected") return this.#remove(origin, "left");
        const wait = LEAVE_RECHECK_MS[again];
        if (wait !== undefined) return later(wait, () => ask(again + 1, waits));
        log.warn("Ignored a leave of {origin}: the monitors say it is connected", { origin });
      });
    ask(0, 0).finally(() => this.#checking.delete(origin));
  }

  /**
   * Forgets a peer and its routes; requests waiting on it fail now (503) instead of at their
   * timeout. `quiet` when this instance is the one leaving.
   */
  #remove(origin: string, why: string, quiet = false): void {
    const { table, platform } = this.#c;
    const peer = table.peer(origin);
    if (peer === undefined) return;
    const routes = table.removePeer(origin);
    this.#named.delete(origin);
    this.#routesFrom.delete(origin);
    if (!quiet) {
      log.info("Peer {origin} {why} ({name} {version})", {
        origin,
        why,
        name: peer.name,
        version: peer.version,
      });
      for (const route of routes) log.info("{route} {origin} unregistered", { route, origin });
    }
    const inbox = inboxOf(platform);
    if (!quiet) {
      for (const e of inbox.retriesFor(origin)) this.#retry(e, peer.name, origin, "left");
    }
    for (const cid of inbox.waitingOn(origin)) {
      this.#unavailable(
        cid,
        quiet
          ? `This instance left the mesh (${why}) before ${origin} replied`
          : `Peer ${origin} (${peer.name}) left before replying`,
      );
    }
    inbox.forgetPeer(origin);
    this.#c.lifeCycle.notify({ type: "leave", origin, name: peer.name || undefined });
  }

  /**
   * The requests waiting on `origin` that asked for a retry go once more, to another instance
   * of their route that takes requests (`origin` is draining: it `why`); where there is none,
   * they go on waiting for `origin`.
   */
  retryElsewhere(origin: string, why: string): void {
    const { table, platform } = this.#c;
    const name = table.peer(origin)?.name ?? "";
    const elsewhere = (e: EventEnvelope) =>
      table.origins(e.to!).some((o) => o !== origin && !table.isDraining(o));
    for (const e of inboxOf(platform).retriesFor(origin, elsewhere)) {
      this.#retry(e, name, origin, why);
    }
  }

  /**
   * `back` takes requests again. A request that asked for a retry and waits on a peer that cannot
   * serve it (its partition takes no writes, or it cannot reach Kafka) stayed there while no other
   * instance could take it; it goes to another one now, within its timeout.
   */
  retryOnReturn(back: string): void {
    const { table } = this.#c;
    for (const { origin } of table.peers()) {
      if (origin === back) continue;
      if (table.isDraining(origin, "stalled")) this.retryElsewhere(origin, "takes no writes");
      else if (table.isDraining(origin, "kafka")) this.retryElsewhere(origin, "cannot reach Kafka");
    }
  }

  // A request whose instance left (or cannot reach Kafka) before replying goes once more, to
  // another instance of its route (the table no longer offers the first one); with none, it
  // fails as it would have.
  #retry(event: EventEnvelope, name: string, origin: string, why: string): void {
    const { platform } = this.#c;
    const cid = event.correlationId!;
    const fail = (e: unknown) =>
      this.#unavailable(
        cid,
        `Peer ${origin} (${name}) ${why} before replying, and the retry failed: ${
          (e as Error).message
        }`,
      );
    log.info("Request {cid} to {route}: {origin} {why} before replying; trying another instance", {
      cid,
      route: event.to,
      origin,
      why,
    });
    // The function can tell a second attempt (the first may have run): see RequestOptions.retry.
    event.tags.retry = "1";
    try {
      platform.deliver(event)?.catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  // Ends the waiting request `cid` with a 503 reply.
  #unavailable(cid: string, body: string): void {
    const { platform } = this.#c;
    platform.deliverLocal(
      new EventEnvelope({ to: platform.inboxAddress, correlationId: cid, status: 503, body }),
    );
  }

  /** Forgets every peer (this instance left the mesh); returns how many there were. */
  removeAll(why: string): number {
    const peers = this.#c.table.peers();
    for (const peer of peers) this.#remove(peer.origin, why, true);
    this.#c.table.clear();
    this.#routesFrom.clear();
    this.#uncovered.clear();
    return peers.length;
  }

  #removeStalled(now: number): void {
    for (const p of this.#c.table.peers()) {
      if (now - p.lastSeen > STALL_MS) this.#remove(p.origin, "stalled");
    }
  }
}
