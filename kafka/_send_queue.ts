// Coalesced produce, shared by the Kafka clients: records sent in the same turn of the event
// loop share produce requests (pipelining many small events), each request at most
// REQUEST_BYTES, because the broker refuses a batch over its `message.max.bytes` (1 MiB by
// default). At most REQUESTS_IN_FLIGHT requests holding a partition's records are unanswered at
// once; that partition's later records wait, in order, and go together in the next request when
// one is answered. So a large event's blocks are pipelined (waiting for each answer capped large
// payloads at one request per round trip), and a partition that takes no writes for a while (its
// leader away, its replicas catching up) holds a few requests, not one per turn: the broker
// handles one connection's requests in order, so hundreds of small ones would drain one by one
// after it comes back, seconds in which requests time out. Other partitions are not held up.
// Each caller resolves when all the requests that hold its records are answered. Order within a
// partition is kept, except where a request is tried again after a failure: it then lands after
// those behind it.
//
// A request whose partitions have several leaders is written as one request per leader, and one
// leader may be away (its broker cut off) while the others answer: the writer then says which
// partitions are written (`written`), and those are free at once. Else a partition whose leader
// answers in a millisecond would wait, with its callers, behind the one tried again for up to
// 35 s, as soon as four such requests held it (a monitor's or a busy caller's every turn).
import type { OutRecord } from "./client.ts";

/** The partitions of `records` whose leader has their records, while the rest are still tried. */
export type Written = (records: readonly { topic: string; partition?: number }[]) => void;

/**
 * Writes one request's records (any topics), resolving when the broker has them all; it may call
 * `written` earlier for some of them (see {@link Written}).
 */
export type Write = (records: OutRecord[], written: Written) => Promise<void>;

/** The most a produce request carries. */
export const REQUEST_BYTES = 512 * 1024;

/** Produce requests holding one partition's records unanswered at once (a 5 MB event is ten). */
export const REQUESTS_IN_FLIGHT = 4;

/** One `send` call: resolved once each of its records is in an answered request. */
interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  /** Its records not yet in a request. */
  unsent: number;
  /** The requests holding its records, unanswered. */
  requests: number;
  failed: boolean;
  /** The last request it was counted in (see `SendQueue.#request`). */
  request: number;
}

/** A record queued, with the call that sent it. */
interface Queued {
  record: OutRecord;
  key: string;
  owner: Pending;
}

/** Queues records and writes them with `write`, coalesced per turn and per busy partition. */
export class SendQueue {
  /** Records waiting, oldest first: a turn's, and those of partitions at their bound. */
  #queue: Queued[] = [];
  #flushing = false;
  /** Requests unanswered per partition (`topic:partition`). */
  readonly #inFlight = new Map<string, number>();
  /** The `topic:partition` keys, made once per partition instead of once per record. */
  readonly #keys = new Map<string, string[]>();
  /** Numbers the requests, so that a caller is counted once in each (no set per request). */
  #request = 0;
  readonly #write: Write;
  readonly #ready: () => Promise<unknown>;

  /**
   * @param write Writes one request's records (any topics), resolving when the broker has them.
   * @param ready Resolves when writing can start (the producer connected); a rejection fails
   * the waiting callers with it.
   */
  constructor(write: Write, ready: () => Promise<unknown>) {
    this.#write = write;
    this.#ready = ready;
  }

  /** Queues `records`; resolves when the broker has them all. */
  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const owner: Pending = {
        resolve,
        reject,
        unsent: records.length,
        requests: 0,
        failed: false,
        request: 0,
      };
      for (const record of records) {
        this.#queue.push({ record, key: this.#keyOf(record.topic, record.partition), owner });
      }
      this.#schedule();
    });
  }

  #keyOf(topic: string, partition = 0): string {
    let keys = this.#keys.get(topic);
    if (keys === undefined) this.#keys.set(topic, keys = []);
    return keys[partition] ??= `${topic}:${partition}`;
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    try {
      await this.#ready();
    } catch (e) {
      const queue = this.#queue;
      this.#queue = [];
      this.#flushing = false;
      for (const q of queue) this.#fail(q.owner, e as Error);
      return;
    }
    this.#flushing = false;
    const queue = this.#queue;
    this.#queue = [];
    // Partitions whose records wait from here on (at their bound, or an earlier record waits).
    const held = new Set<string>();
    let entries: Queued[] = [];
    let owners: Pending[] = [];
    let keys = new Set<string>();
    let lastKey = "";
    let size = 0;
    let request = ++this.#request;
    for (const q of queue) {
      if (q.owner.failed) continue; // its caller heard already: the rest is not written
      const n = typeof q.record.value === "string"
        ? q.record.value.length * 3
        : q.record.value.byteLength;
      if (entries.length > 0 && size + n > REQUEST_BYTES) {
        this.#send(entries, owners, keys);
        entries = [];
        owners = [];
        keys = new Set();
        lastKey = "";
        size = 0;
        request = ++this.#request;
      }
      // (A turn's records mostly go to one partition: the set is asked when the key changes.)
      if (q.key !== lastKey && !keys.has(q.key)) {
        // The partition's first record in this request: it goes if the partition has room.
        const inFlight = this.#inFlight.get(q.key) ?? 0;
        if (held.has(q.key) || inFlight >= REQUESTS_IN_FLIGHT) {
          held.add(q.key);
          this.#queue.push(q);
          continue;
        }
        keys.add(q.key);
        this.#inFlight.set(q.key, inFlight + 1);
      }
      lastKey = q.key;
      entries.push(q);
      if (q.owner.request !== request) {
        q.owner.request = request;
        owners.push(q.owner);
      }
      q.owner.unsent--;
      size += n;
    }
    if (entries.length > 0) this.#send(entries, owners, keys);
  }

  // Writes one request; its callers hear when it ends (or when their partitions are written, see
  // `Written`), and waiting records of its partitions go.
  #send(entries: Queued[], owners: Pending[], keys: Set<string>): void {
    for (const o of owners) o.requests++;
    // Only once some partitions are written before the rest: those, and per caller its records
    // here not written yet (a caller at 0 has heard).
    let released: Set<string> | undefined;
    let left: Map<Pending, number> | undefined;
    let settled = false;
    const written: Written = (done) => {
      if (settled) return;
      const now = new Set<string>();
      for (const r of done) {
        const key = this.#keyOf(r.topic, r.partition);
        if (keys.has(key) && !released?.has(key)) now.add(key);
      }
      if (now.size === 0) return;
      if (left === undefined) {
        left = new Map();
        for (const q of entries) left.set(q.owner, (left.get(q.owner) ?? 0) + 1);
      }
      released ??= new Set();
      for (const key of now) {
        released.add(key);
        this.#release(key);
      }
      for (const q of entries) {
        if (!now.has(q.key)) continue;
        const n = left.get(q.owner)! - 1;
        left.set(q.owner, n);
        if (n === 0) this.#answered(q.owner);
      }
      if (this.#queue.length > 0) this.#schedule();
    };
    this.#write(entries.map((q) => q.record), written).then(() => {
      for (const o of owners) if (left?.get(o) !== 0) this.#answered(o);
    }, (e) => {
      for (const o of owners) {
        if (left?.get(o) === 0) continue; // all of its records here were written
        o.requests--;
        this.#fail(o, e as Error);
      }
    }).finally(() => {
      settled = true;
      for (const k of keys) if (!released?.has(k)) this.#release(k);
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  // One request holding records of `owner` is answered.
  #answered(owner: Pending): void {
    if (--owner.requests === 0 && owner.unsent === 0 && !owner.failed) owner.resolve();
  }

  // A request no longer holds `key`'s partition.
  #release(key: string): void {
    const n = this.#inFlight.get(key)! - 1;
    if (n === 0) this.#inFlight.delete(key);
    else this.#inFlight.set(key, n);
  }

  #fail(owner: Pending, e: Error): void {
    if (owner.failed) return;
    owner.failed = true;
    owner.reject(e);
  }
}
