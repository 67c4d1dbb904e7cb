/**
 * The presence monitors' shared state: who is connected through which monitor, and which app
 * instance owns which virtual topic (one partition of a `multiplex.NNNN` topic).
 *
 * Every monitor applies the same control messages in the same order (they all read
 * `service.monitor` partition 0), so every monitor holds the same table. A lease is granted
 * by a `claim` message, and only if the topic is still free when the claim is applied: two
 * monitors claiming one topic at the same moment cannot both win, whatever the timing. This
 * replaces the Java original's RSVP round (a timed grace period); see docs/presence.md.
 *
 * An origin belongs to the instance that first claimed it: a connection may carry a
 * `verifier` (see `identityVerifier` in protocol/credentials.ts), and a later session of the
 * same origin must carry the same one, while the record lives and for {@link IDENTITY_HOLD_MS}
 * after it went (so that nobody takes the origin while its instance reconnects).
 *
 * This module is pure: no I/O and no clock (times come from the messages).
 *
 * @module
 */

/** What a monitor knows about one connected application instance. */
export interface ConnectionInfo {
  /** The instance's origin id. */
  origin: string;
  /** Application name. */
  name: string;
  /** Application version. */
  version: string;
  /** Personality: APP, REST or RESOURCES. */
  type: string;
  /** Closed user group. */
  group: number;
  /** The monitor holding the websocket. */
  monitor: string;
  /** The websocket session id on that monitor. */
  session: string;
  /** When the connection was opened (ISO-8601). */
  created: string;
  /** The last info or keep-alive (ISO-8601). */
  updated: string;
  /** Messages seen on the session. */
  seq: number;
  /** The leased virtual topic, once granted. */
  topic?: string;
  /** The app's own `instance` header, if it sent one. */
  instance?: string;
  /**
   * What proves the instance owns the origin (a digest of its identity secret); absent for
   * instances that present none (Java ones), whose origin anyone may then take over.
   */
  verifier?: string;
}

/** How long an owned origin stays reserved for its instance after its record went (ms). */
export const IDENTITY_HOLD_MS = 60_000;
/** At most this many departed origins are held (the oldest goes first). */
export const MAX_DEPARTED = 2_000;

/** An owned origin whose record went, reserved for its instance for a while. */
export interface Departed {
  /** The origin id. */
  origin: string;
  /** Its owner's verifier. */
  verifier: string;
  /** The record's last update (ms since the epoch): reserved until this + the hold. */
  at: number;
}

/** A control message, as carried on partition 0. */
export type ControlMessage =
  /**
   * A connection's record; `foreign` when a Java monitor holds it (Java checks no identities,
   * so its records are taken as they come).
   */
  | { type: "put"; info: ConnectionInfo; foreign?: boolean }
  /** A lease given by a Java monitor (its `confirm_topic`, or the topic its record names). */
  | { type: "assign"; origin: string; topic: string; monitor: string }
  | { type: "claim"; origin: string; session: string; topic: string; monitor: string }
  | { type: "del"; origin: string; session: string; monitor: string; reason: string }
  | { type: "release_monitor"; dead: string; monitor: string }
  | { type: "held"; monitor: string; connections: ConnectionInfo[] };

/** What applying a message changed, for the monitors to act on. */
export type Effect =
  | {
    kind: "granted";
    origin: string;
    session: string;
    /** The lease: the claimed topic, or the one the origin held already. */
    topic: string;
    /** The topic the claim named (the monitor reserved it while the claim was on its way). */
    claimed: string;
    monitor: string;
  }
  | {
    kind: "rejected";
    origin: string;
    session: string;
    topic: string;
    monitor: string;
    why: string;
  }
  | { kind: "released"; topic: string; info: ConnectionInfo; reason: string }
  | { kind: "left"; info: ConnectionInfo; reason: string; by: string }
  /** The origin reconnected through another session (or monitor); it keeps its lease. */
  | { kind: "superseded"; old: ConnectionInfo; by: ConnectionInfo }
  /** A session claimed an origin that another instance owns: it was not recorded. */
  | { kind: "impostor"; info: ConnectionInfo }
  | { kind: "conflict"; info: ConnectionInfo; owner: string | undefined };

/** A copy of the table, as sent to a monitor that starts later. */
export interface TableSnapshot {
  /** Every connection, with its lease. */
  connections: ConnectionInfo[];
  /** Owned origins whose records went recently (absent from older monitors' snapshots). */
  departed?: Departed[];
}

/**
 * All virtual topic names in assignment order: `<prefix>.0001-000`, `<prefix>.0001-001`, ...
 *
 * @throws {RangeError} When the sizes are not positive integers.
 */
export function virtualTopics(prefix: string, partitionsPerTopic: number, max: number): string[] {
  if (!(partitionsPerTopic >= 1 && max >= partitionsPerTopic)) {
    throw new RangeError(
      `max.virtual.topics (${max}) must be at least app.partitions.per.topic (${partitionsPerTopic})`,
    );
  }
  const topics = Math.floor(max / partitionsPerTopic);
  const out: string[] = [];
  for (let t = 1; t <= topics; t++) {
    for (let p = 0; p < partitionsPerTopic; p++) {
      out.push(`${prefix}.${String(t).padStart(4, "0")}-${String(p).padStart(3, "0")}`);
    }
  }
  return out;
}

/** The replicated table of connections and leases. */
export class LeaseTable {
  /** Every virtual topic, in assignment order. */
  readonly all: readonly string[];
  readonly #valid: Set<string>;
  readonly #owner = new Map<string, string>(); // virtual topic -> origin
  readonly #connections = new Map<string, ConnectionInfo>();
  /** Owned origins whose records went, oldest first. */
  readonly #departed = new Map<string, Departed>();

  /**
   * Creates an empty table.
   *
   * @param topics Every virtual topic, in assignment order (see {@link virtualTopics}).
   */
  constructor(topics: readonly string[]) {
    this.all = topics;
    this.#valid = new Set(topics);
  }

  /** The connection of `origin`, if any. */
  connection(origin: string): ConnectionInfo | undefined {
    return this.#connections.get(origin);
  }

  /**
   * The verifier that a session of `origin` must carry at time `at` (ms), if the origin is
   * owned: by its live record, or by one that went less than {@link IDENTITY_HOLD_MS} before.
   */
  ownerOf(origin: string, at: number): string | undefined {
    const c = this.#connections.get(origin);
    if (c !== undefined) return c.verifier;
    const d = this.#departed.get(origin);
    return d !== undefined && at < d.at + IDENTITY_HOLD_MS ? d.verifier : undefined;
  }

  /** Every connection. */
  connections(): ConnectionInfo[] {
    return [...this.#connections.values()];
  }

  /** Virtual topic → owner origin, in assignment order. */
  leases(): [string, string][] {
    return this.all.filter((t) => this.#owner.has(t)).map((t) => [t, this.#owner.get(t)!]);
  }

  /** Whether `topic` is one of the virtual topics. */
  isVirtualTopic(topic: string): boolean {
    return this.#valid.has(topic);
  }

  /** Whether `topic` is a virtual topic that nobody holds. */
  isFree(topic: string): boolean {
    return this.#valid.has(topic) && !this.#owner.has(topic);
  }

  /** The first free virtual topic that `usable` accepts, or undefined when none is. */
  nextFree(usable: (topic: string) => boolean = () => true): string | undefined {
    return this.all.find((t) => !this.#owner.has(t) && usable(t));
  }

  /** The table as a snapshot. */
  snapshot(): TableSnapshot {
    return {
      connections: this.connections().map((c) => ({ ...c })),
      departed: [...this.#departed.values()].map((d) => ({ ...d })),
    };
  }

  /** Replaces the whole table with a snapshot. */
  load(snapshot: TableSnapshot): void {
    this.#owner.clear();
    this.#connections.clear();
    this.#departed.clear();
    for (const d of snapshot.departed ?? []) this.#departed.set(d.origin, { ...d });
    for (const c of snapshot.connections) {
      this.#connections.set(c.origin, { ...c });
      if (c.topic !== undefined && this.#valid.has(c.topic)) this.#owner.set(c.topic, c.origin);
    }
  }

  /** Applies one control message and returns what changed. */
  apply(msg: ControlMessage): Effect[] {
    switch (msg.type) {
      case "put":
        return this.#put(msg.info, msg.foreign === true);
      case "assign":
        return this.#assign(msg.origin, msg.topic, msg.monitor);
      case "claim":
        return this.#claim(msg.origin, msg.session, msg.topic, msg.monitor);
      case "del": {
        const c = this.#connections.get(msg.origin);
        if (c === undefined || c.session !== msg.session) return [];
        return this.#remove(c, msg.reason, msg.monitor);
      }
      case "release_monitor":
        return this.connections()
          .filter((c) => c.monitor === msg.dead)
          .flatMap((c) => this.#remove(c, `monitor ${msg.dead} is gone`, msg.monitor));
      case "held":
        return this.#held(msg.monitor, msg.connections);
    }
  }

  // What a monitor says it holds after Kafka was away or lost its data, when messages may have
  // been lost: its connections are exactly these, with these leases. A lease that another
  // instance holds here (possible only when messages were lost both ways) is not recorded.
  #held(monitor: string, held: ConnectionInfo[]): Effect[] {
    const sessions = new Set(held.map((c) => c.session));
    const effects = this.connections()
      .filter((c) => c.monitor === monitor && !sessions.has(c.session))
      .flatMap((c) => this.#remove(c, `no longer held by monitor ${monitor}`, monitor));
    for (const c of held) {
      if (c.monitor !== monitor || this.#connections.has(c.origin)) continue;
      const owner = this.ownerOf(c.origin, Date.parse(c.updated));
      if (owner !== undefined && owner !== c.verifier) {
        effects.push({ kind: "impostor", info: c });
        continue;
      }
      this.#departed.delete(c.origin);
      let topic = c.topic;
      if (topic !== undefined && (!this.#valid.has(topic) || this.#owner.has(topic))) {
        effects.push({ kind: "conflict", info: c, owner: this.#owner.get(topic) });
        topic = undefined;
      }
      this.#connections.set(c.origin, { ...c, topic });
      if (topic !== undefined) this.#owner.set(topic, c.origin);
    }
    return effects;
  }

  #put(info: ConnectionInfo, foreign: boolean): Effect[] {
    const old = this.#connections.get(info.origin);
    if (old !== undefined && old.session === info.session && old.monitor === info.monitor) {
      this.#connections.set(info.origin, {
        ...info,
        topic: old.topic,
        created: old.created,
        verifier: old.verifier,
      });
      return [];
    }
    // Another session of the origin: only its owner may take it (while the record lives, and
    // for the hold after it went). Every monitor applies the same messages, so every monitor
    // refuses the same sessions, whichever of them the impostor reached.
    const at = Date.parse(info.updated);
    this.#expireDeparted(at);
    const owner = this.ownerOf(info.origin, at);
    if (!foreign && owner !== undefined && owner !== info.verifier) {
      return [{ kind: "impostor", info }];
    }
    // The first claim decides: an origin first claimed without a verifier stays open.
    const verifier = old !== undefined || foreign ? owner : info.verifier;
    this.#departed.delete(info.origin);
    // The same origin through another session: the instance reconnected (its monitor went
    // away, or the network dropped the socket). It keeps its lease, so that it goes on reading
    // the same partition and its peers notice nothing; no leave is announced.
    this.#connections.set(info.origin, {
      ...info,
      topic: old?.topic,
      created: old?.created ?? info.created,
      verifier,
    });
    return old === undefined ? [] : [{ kind: "superseded", old, by: info }];
  }

  #claim(origin: string, session: string, topic: string, monitor: string): Effect[] {
    const c = this.#connections.get(origin);
    const reject = (why: string): Effect[] => [
      { kind: "rejected", origin, session, topic, monitor, why },
    ];
    if (c === undefined || c.session !== session) return reject("the connection is gone");
    if (c.topic !== undefined) {
      return [{ kind: "granted", origin, session, topic: c.topic, claimed: topic, monitor }];
    }
    if (!this.#valid.has(topic)) return reject(`${topic} is not a virtual topic`);
    if (this.#owner.has(topic)) return reject(`${topic} is taken`);
    this.#owner.set(topic, origin);
    c.topic = topic;
    return [{ kind: "granted", origin, session, topic, claimed: topic, monitor }];
  }

  // A Java monitor leased `topic` to `origin` and told its application so: the table follows
  // (the origin moves there from a lease it had). A topic that another origin holds here is not
  // taken: the Java monitor closes its application when it hears of the other holder.
  #assign(origin: string, topic: string, monitor: string): Effect[] {
    const c = this.#connections.get(origin);
    if (c === undefined || c.topic === topic) return [];
    const owner = this.#owner.get(topic);
    if (!this.#valid.has(topic) || owner !== undefined) {
      return [{ kind: "conflict", info: { ...c, topic }, owner }];
    }
    const effects: Effect[] = [];
    if (c.topic !== undefined && this.#owner.get(c.topic) === origin) {
      this.#owner.delete(c.topic);
      effects.push({ kind: "released", topic: c.topic, info: c, reason: `moved to ${topic}` });
    }
    this.#owner.set(topic, origin);
    c.topic = topic;
    effects.push({ kind: "granted", origin, session: c.session, topic, claimed: topic, monitor });
    return effects;
  }

  #remove(c: ConnectionInfo, reason: string, by: string): Effect[] {
    this.#connections.delete(c.origin);
    if (c.verifier !== undefined) {
      const at = Date.parse(c.updated);
      this.#departed.delete(c.origin); // to the end: the newest
      this.#departed.set(c.origin, { origin: c.origin, verifier: c.verifier, at });
      this.#expireDeparted(at);
    }
    const effects: Effect[] = [{ kind: "left", info: c, reason, by }];
    if (c.topic !== undefined && this.#owner.get(c.topic) === c.origin) {
      this.#owner.delete(c.topic);
      effects.push({ kind: "released", topic: c.topic, info: c, reason });
    }
    return effects;
  }

  // Forgets departed origins whose hold ended by `now` (from a message), and the oldest beyond
  // MAX_DEPARTED. Insertion order is close to time order, so the scan stops early.
  #expireDeparted(now: number): void {
    for (const d of this.#departed.values()) {
      if (this.#departed.size <= MAX_DEPARTED && now < d.at + IDENTITY_HOLD_MS) break;
      this.#departed.delete(d.origin);
    }
  }
}
