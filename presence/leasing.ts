/**
 * How a monitor gives its sessions their leases: it claims a free virtual topic on partition 0
 * (under the Java monitors' lock while one listens, see java_peers.ts), and once the table
 * grants the claim it prepares the topic and sends the application `ready`; a claim another
 * monitor won is tried again with the next free topic.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import { splitVirtualTopic } from "../kafka/records.ts";
import { CLOSE, readyMessage } from "../protocol/presence.ts";
import type { MonitorMessage } from "./control.ts";
import type { Effect, LeaseTable } from "./lease_table.ts";
import type { Session, Sessions } from "./sessions.ts";

const log = logger("presence");

/** A claim of a free lease for a session. */
export type Claim = MonitorMessage & { type: "claim" };

/** What leasing needs of its monitor. */
export interface LeasingContext {
  /** The monitor's origin and version (the version goes with `ready`). */
  readonly me: string;
  readonly version: string;
  readonly table: LeaseTable;
  readonly sessions: Sessions;
  /**
   * Prepares a physical topic for a lease of `partition`; gives its partition count. `waiting`:
   * how many more leases this monitor is about to give (claims on their way, sessions that have
   * yet to ask), whose topics come next.
   */
  prepare(physical: string, partition: number, waiting: number): Promise<number>;
  /** Whether a claim waits for the Java monitors' lock, and the wait itself. */
  mustWait(): boolean;
  wait(s: Session): void;
  /** Whether a Java monitor still holds `topic` for another live application than `origin`. */
  reserved(topic: string, origin: string): boolean;
}

/** The leases one monitor claims for its sessions. */
export class Leasing {
  readonly #c: LeasingContext;
  /** Topics claimed and not yet granted or rejected. */
  readonly #claiming = new Set<string>();

  /** The leasing of the monitor that `context` describes. */
  constructor(context: LeasingContext) {
    this.#c = context;
  }

  /**
   * The claim for a session that sent `info`, or `[]` while it waits for the Java monitors'
   * lock, or undefined when every topic is taken (the session is closed with 1013).
   */
  claimFor(s: Session): MonitorMessage[] | undefined {
    s.claimed = true;
    // An origin that holds a lease keeps it (it reconnects, its monitor gone): no partition is
    // given, so there is no lock to wait for. The Java monitors map that partition to it already.
    const held = this.#c.table.connection(s.origin)?.topic;
    if (held !== undefined) return [this.#claim(s, held)];
    if (!this.#c.mustWait()) {
      const claim = this.nextClaim(s);
      return claim === undefined ? undefined : [claim];
    }
    this.#c.wait(s);
    return [];
  }

  /**
   * The lease the application says it holds when it is free (all monitors restarted and the
   * table is new: it goes on with the same partition), else the first free one.
   */
  nextClaim(s: Session): Claim | undefined {
    const { table } = this.#c;
    const hint = s.hint;
    s.hint = undefined; // once: a rejected claim goes on with the first free topic
    const usable = (t: string) => !this.#claiming.has(t) && !this.#c.reserved(t, s.origin);
    const topic = hint !== undefined && table.isFree(hint) && usable(hint)
      ? hint
      : table.nextFree(usable);
    if (topic === undefined) {
      this.#c.sessions.drop(
        s,
        CLOSE.TRY_AGAIN,
        `All virtual topics (${table.all.length}) are busy`,
      );
      return undefined;
    }
    s.claimed = true;
    this.#claiming.add(topic);
    return this.#claim(s, topic);
  }

  #claim(s: Session, topic: string): Claim {
    return { type: "claim", origin: s.origin, session: s.id, topic, monitor: this.#c.me };
  }

  /** A claim of this monitor's was granted: the session gets `ready` once its topic is there. */
  granted(fx: Effect & { kind: "granted" }): void {
    this.#claiming.delete(fx.claimed);
    const s = this.#c.sessions.of(fx.origin);
    if (s?.id === fx.session && this.#c.table.connection(fx.origin)) this.#sendReady(s, fx.topic);
  }

  /** A claim of this monitor's lost: gives the claim to try next, if any. */
  rejected(fx: Effect & { kind: "rejected" }): MonitorMessage[] | undefined {
    this.#claiming.delete(fx.topic);
    const s = this.#c.sessions.of(fx.origin);
    if (s?.id !== fx.session || s.closing) return undefined;
    log.info("Claim of {topic} for {origin} lost: {why}; trying another", {
      topic: fx.topic,
      origin: fx.origin,
      why: fx.why,
    });
    return this.claimFor(s);
  }

  // The other instances of the session's group that hold a lease: whose routes it will hear.
  #peersOf(s: Session): number {
    const group = s.info?.group;
    let n = 0;
    for (const c of this.#c.table.connections()) {
      if (c.group === group && c.topic !== undefined && c.origin !== s.origin) n++;
    }
    return n;
  }

  #sendReady(s: Session, topic: string): void {
    const [physical, partition] = splitVirtualTopic(topic);
    const waiting = this.#claiming.size + this.#c.sessions.unannounced;
    this.#c.prepare(physical, partition, waiting).then((n) => {
      if (n <= partition) throw new Error(`Insufficient partitions in ${physical} (${n})`);
      if (s.closing) return;
      // The app announces its own join once it reads its partitions; as in the Java original,
      // the monitor writes only leaves to the group.
      s.socket.send(readyMessage(topic, this.#c.version, this.#peersOf(s)).toBytes());
    }).catch((e) => {
      // The documented reason for too few partitions; Kafka's own errors stay in the log.
      const message = (e as Error).message;
      const documented = message.startsWith("Insufficient");
      if (!documented) log.error("Cannot prepare {topic}: {message}", { topic: physical, message });
      this.#c.sessions.drop(s, CLOSE.TRY_AGAIN, documented ? message : "Kafka unavailable");
    });
  }
}
