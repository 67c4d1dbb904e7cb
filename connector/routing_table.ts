/**
 * The distributed routing table one application instance keeps: which peer instances exist,
 * where (which virtual topic) each listens, and which public routes each serves. It is filled
 * by the registry messages (docs/wire.md, "The routing table"). Pure data, no I/O.
 *
 * @module
 */

/** What the table knows of one peer instance. */
export interface Peer {
  /** Origin id. */
  origin: string;
  /** Its virtual topic, e.g. `multiplex.0001-003`. */
  topic: string;
  /** Application name. */
  name: string;
  /** Application version. */
  version: string;
  /** Last time a registry message from it arrived (ms). */
  lastSeen: number;
}

/**
 * Why new requests avoid a peer: it is stopping (its own `drain`), its monitor says it cannot
 * reach Kafka, or writes to its partition stall here.
 */
export type DrainReason = "stopping" | "kafka" | "stalled";

/** The routing table. */
export class RoutingTable {
  readonly #peers = new Map<string, Peer>();
  // route -> origin -> personality ("<app name>, <TYPE>")
  readonly #routes = new Map<string, Map<string, string>>();
  // route -> its origins as a list, rebuilt when they change (read on every request)
  readonly #lists = new Map<string, string[]>();
  // route -> the origins new requests go to: those not draining, unless all are
  readonly #picks = new Map<string, string[]>();
  // origin -> why new requests avoid it (see DrainReason); absent: they do not
  readonly #draining = new Map<string, Set<DrainReason>>();

  /** The peer with this origin, if known. */
  peer(origin: string): Peer | undefined {
    return this.#peers.get(origin);
  }

  /** Every known peer. */
  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  /** How many peers are known. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /** Records (or refreshes) a peer. Returns true when it was new. */
  upsertPeer(p: Omit<Peer, "lastSeen">, now: number): boolean {
    const old = this.#peers.get(p.origin);
    this.#peers.set(p.origin, {
      origin: p.origin,
      topic: p.topic || old?.topic || "",
      name: p.name || old?.name || "",
      version: p.version || old?.version || "",
      lastSeen: now,
    });
    return old === undefined;
  }

  /** Adds a route served by `origin`. Returns true when it was new for that origin. */
  addRoute(route: string, origin: string, personality: string): boolean {
    let byOrigin = this.#routes.get(route);
    if (byOrigin === undefined) {
      byOrigin = new Map();
      this.#routes.set(route, byOrigin);
    }
    const isNew = !byOrigin.has(origin);
    byOrigin.set(origin, personality);
    if (isNew) this.#listed(route, byOrigin);
    return isNew;
  }

  /** Removes one route of one origin. Returns true when it was there. */
  removeRoute(route: string, origin: string): boolean {
    const byOrigin = this.#routes.get(route);
    if (byOrigin === undefined || !byOrigin.delete(origin)) return false;
    if (byOrigin.size === 0) {
      this.#routes.delete(route);
      this.#lists.delete(route);
      this.#picks.delete(route);
    } else this.#listed(route, byOrigin);
    return true;
  }

  #listed(route: string, byOrigin: Map<string, string>): void {
    const all = [...byOrigin.keys()];
    const active = all.filter((o) => !this.#draining.has(o));
    this.#lists.set(route, all);
    this.#picks.set(route, active.length > 0 ? active : all);
  }

  /**
   * Marks a peer as draining for `reason`: new requests go to the other instances of its
   * routes, and to it only where it is the last one. `false` withdraws that reason; it takes
   * requests again once no reason is left. Returns whether anything changed.
   */
  setDraining(origin: string, draining = true, reason: DrainReason = "stopping"): boolean {
    const reasons = this.#draining.get(origin);
    if ((reasons?.has(reason) ?? false) === draining) return false;
    const before = reasons !== undefined;
    if (draining) {
      if (reasons === undefined) this.#draining.set(origin, new Set([reason]));
      else reasons.add(reason);
    } else {
      reasons!.delete(reason);
      if (reasons!.size === 0) this.#draining.delete(origin);
    }
    if (before !== this.#draining.has(origin)) {
      for (const [route, byOrigin] of this.#routes) {
        if (byOrigin.has(origin)) this.#listed(route, byOrigin);
      }
    }
    return true;
  }

  /** Whether a peer is draining (for `reason`, or for any). */
  isDraining(origin: string, reason?: DrainReason): boolean {
    const reasons = this.#draining.get(origin);
    return reason === undefined ? reasons !== undefined : reasons?.has(reason) ?? false;
  }

  /** Removes a peer and all its routes; returns the routes it served. */
  removePeer(origin: string): string[] {
    this.#peers.delete(origin);
    this.#draining.delete(origin);
    const removed: string[] = [];
    for (const route of [...this.#routes.keys()]) {
      if (this.removeRoute(route, origin)) removed.push(route);
    }
    return removed;
  }

  /** Origins serving `route`, in the order they were added (do not modify the list). */
  origins(route: string): readonly string[] {
    return this.#lists.get(route) ?? [];
  }

  /** Routes served by `origin`, with their personalities. */
  routesOf(origin: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [route, byOrigin] of this.#routes) {
      const p = byOrigin.get(origin);
      if (p !== undefined) out.set(route, p);
    }
    return out;
  }

  /** Every route with the origins serving it and their personalities. */
  routes(): Map<string, Map<string, string>> {
    return this.#routes;
  }

  /**
   * The origins new requests for `route` go to: those not draining, unless all are. The list is
   * the same object until they change (do not modify it).
   */
  takers(route: string): readonly string[] {
    return this.#picks.get(route) ?? [];
  }

  /** Forgets every peer and route. */
  clear(): void {
    this.#peers.clear();
    this.#routes.clear();
    this.#lists.clear();
    this.#picks.clear();
    this.#draining.clear();
  }
}
