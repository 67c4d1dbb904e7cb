/**
 * Peers whose partition takes no write from here: a send that is not acknowledged within
 * {@link WRITE_STALL_MS} (or four times the usual acknowledgement, when the whole cluster is slow:
 * an overloaded cluster is not a stalled partition), while nothing else to that peer was, means
 * its partition's leader is away (a broker lost, not yet replaced) or unreachable from here. New
 * requests then go to the route's other instances, and the requests waiting on it that asked for
 * a retry go to another one at once; a probe record (a start token of nobody, which readers skip)
 * is written to its partition every second until one is acknowledged, and then it takes requests
 * again, and those waiting on a peer still stalled (sent while every instance was) go to it.
 * Nothing is said to the rest of the mesh: another instance may reach that partition.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import { everyTick } from "../bus/_on_time.ts";
import { UsualTime } from "../bus/_usual.ts";
import type { TickTimer } from "../bus/_on_time.ts";
import { INIT_HEADER } from "../kafka/client.ts";
import type { OutRecord } from "../kafka/client.ts";
import { splitVirtualTopic } from "../kafka/records.ts";
import type { RoutingTable } from "./routing_table.ts";

const log = logger("connector");

/** How long an unacknowledged send to a peer, with no progress, counts as a stall. */
const WRITE_STALL_MS = 2000;
/** How often the sends on their way are looked at, and a stalled peer's partition probed. */
const CHECK_MS = 500;
const PROBE_MS = 1000;
/** A stall is this many times the usual acknowledgement at least (see the module). */
const SLOW_FACTOR = 4;

/** Sends on their way to one peer. */
interface Flow {
  pending: number;
  /** When a send to it was last acknowledged, or when the oldest pending one left. */
  progress: number;
  stalledAt?: number;
  probing?: boolean;
  probedAt?: number;
}

/** What {@link Stalls} needs of its connector. */
export interface StallsContext {
  table: RoutingTable;
  /** Writes records (a probe). */
  send(records: OutRecord[]): Promise<void>;
  /** The requests waiting on `origin` that may go elsewhere do. */
  retryElsewhere(origin: string, why: string): void;
  /** `origin` takes requests again: what waits on a stalled peer may go to it. */
  retryOnReturn(origin: string): void;
}

/** Watches the sends to peers for stalls (see the module). */
export class Stalls {
  readonly #c: StallsContext;
  readonly #flows = new Map<string, Flow>();
  #timer: TickTimer | undefined;
  #closed = false;
  /** The usual time to an acknowledgement, over every peer. */
  readonly #acks = new UsualTime();

  constructor(c: StallsContext) {
    this.#c = c;
  }

  /** Watches `sent`, a send to the peer `origin`. */
  watch(origin: string, sent: Promise<void>): void {
    if (this.#closed) return;
    const now = Date.now();
    let flow = this.#flows.get(origin);
    if (flow === undefined) this.#flows.set(origin, flow = { pending: 0, progress: now });
    if (flow.pending++ === 0 && flow.stalledAt === undefined) flow.progress = now;
    this.#timer ??= everyTick(CHECK_MS, (now, onTime) => this.#check(now, onTime));
    const f = flow;
    sent.then(() => {
      f.pending--;
      const at = Date.now();
      this.#acks.add(at - now);
      this.#progressed(origin, f, at);
    }, () => f.pending--);
  }

  /** Stops watching (the connector stops). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#flows.clear();
  }

  #progressed(origin: string, flow: Flow, at = Date.now()): void {
    flow.progress = at;
    if (flow.stalledAt === undefined) return;
    flow.stalledAt = undefined;
    if (this.#c.table.setDraining(origin, false, "stalled")) {
      log.info("Peer {origin}'s partition takes writes again: it takes requests again", { origin });
      this.#c.retryOnReturn(origin);
    }
  }

  #check(now: number, onTime: boolean): void {
    const { table } = this.#c;
    for (const [origin, flow] of this.#flows) {
      const peer = table.peer(origin);
      if (peer === undefined) {
        // It left: nothing to take back.
        if (flow.stalledAt !== undefined) table.setDraining(origin, false, "stalled");
        this.#flows.delete(origin);
        continue;
      }
      if (flow.stalledAt !== undefined) {
        this.#probe(origin, peer.topic, flow, now);
        continue;
      }
      if (flow.pending === 0) {
        this.#flows.delete(origin);
        continue;
      }
      const bound = Math.max(WRITE_STALL_MS, SLOW_FACTOR * this.#acks.ms);
      if (!onTime || now - flow.progress < bound) continue;
      flow.stalledAt = now;
      table.setDraining(origin, true, "stalled");
      log.warn(
        "Peer {origin}'s partition took no write for {ms} ms (its leader away?): new requests " +
          "go to other instances",
        { origin, ms: now - flow.progress },
      );
      this.#c.retryElsewhere(origin, "takes no writes");
    }
    if (this.#flows.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  // One probe at a time, a second apart; its acknowledgement ends the stall.
  #probe(origin: string, topic: string, flow: Flow, now: number): void {
    if (flow.probing || now - (flow.probedAt ?? 0) < PROBE_MS || !topic) return;
    flow.probing = true;
    flow.probedAt = now;
    const [physical, partition] = splitVirtualTopic(topic);
    this.#c.send([{
      topic: physical,
      partition,
      headers: { [INIT_HEADER]: "stall-probe" },
      value: "init",
    }])
      .then(() => this.#progressed(origin, flow), () => {})
      .finally(() => (flow.probing = false));
  }
}
