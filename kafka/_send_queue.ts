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

/**
 * Bytes that may wait for one partition while it is at its bound (its leader slow or away): a
 * send beyond it fails at once. Kafka's own producer bounds what it buffers too
 * (`buffer.memory`); without it, a partition whose leader never comes back (replication factor
 * 1, its broker gone) would keep every record sent to it.
 */
export const WAITING_BYTES_PER_PARTITION = 128 * 1024 * 1024;

/** Records that may wait for one partition (each is looked at again at every turn). */
export const WAITING_RECORDS_PER_PARTITION = 100_000;

/** Bytes that may wait across partitions: past it, no partition that has records waiting takes more. */
export const WAITING_BYTES = 256 * 1024 * 1024;

/** One partition, as the queue keeps it. */
interface Slot {
  /** `topic:partition`, for messages. */
  readonly key: string;
  /** Requests holding its records, unanswered. */
  inFlight: number;
  /** Records waiting for it to be below its bound, and their bytes. */
  waiting: number;
  waitingBytes: number;
  /** The last flush that found it at its bound. */
  heldAt: number;
}

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
  slot: Slot;
  owner: Pending;
  /** Its bytes (a string's at most). */
  size: number;
  /** Counted in its slot's `waiting`. */
  waits: boolean;
}

/** Queues records and writes them with `write`, coalesced per turn and per busy partition. */
export class SendQueue {
  /** Records waiting, oldest first: a turn's, and those of partitions at their bound. */
  #queue: Queued[] = [];
  #flushing = false;
  /** Each partition written to, by topic. */
  readonly #slots = new Map<string, Slot[]>();
  /** Bytes waiting across partitions. */
  #waitingBytes = 0;
  /** Numbers the requests, so that a caller is counted once in each (no set per request). */
  #request = 0;
  /** Numbers the flushes (see `Slot.heldAt`). */
  #flushes = 0;
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

  /** Bytes of records waiting for partitions at their bound. */
  get waiting(): number {
    return this.#waitingBytes;
  }

  /**
   * Queues `records`; resolves when the broker has them all. Fails at once, queuing none, when a
   * partition of theirs has as much waiting as it may (see {@link WAITING_BYTES_PER_PARTITION}).
   */
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
      const queue = this.#queue;
      let queued = 0;
      for (const record of records) {
        const slot = this.#slotOf(record.topic, record.partition);
        const value = record.value;
        const size = typeof value === "string" ? value.length * 3 : value.byteLength;
        // (Only a partition with records waiting can be full: one that has none is not checked.)
        if (slot.waiting > 0 && this.#full(slot, size)) {
          queue.length -= queued; // what this call queued already
          reject(
            new Error(
              `Kafka ${slot.key}: ${slot.waiting} records (${mib(slot.waitingBytes)} MiB) wait ` +
                `for it while its writes are not answered (${mib(this.#waitingBytes)} MiB in ` +
                "all): not queued",
            ),
          );
          return;
        }
        queue.push({ record, slot, owner, size, waits: false });
        queued++;
      }
      this.#schedule();
    });
  }

  #full(slot: Slot, size: number): boolean {
    return slot.waiting >= WAITING_RECORDS_PER_PARTITION ||
      slot.waitingBytes + size > WAITING_BYTES_PER_PARTITION ||
      this.#waitingBytes + size > WAITING_BYTES;
  }

  #slotOf(topic: string, partition = 0): Slot {
    let slots = this.#slots.get(topic);
    if (slots === undefined) this.#slots.set(topic, slots = []);
    return slots[partition] ??= {
      key: `${topic}:${partition}`,
      inFlight: 0,
      waiting: 0,
      waitingBytes: 0,
      heldAt: 0,
    };
  }

  // `q` no longer waits (it goes, or its caller failed), or waits again.
  #unwait(q: Queued): void {
    if (!q.waits) return;
    q.waits = false;
    q.slot.waiting--;
    q.slot.waitingBytes -= q.size;
    this.#waitingBytes -= q.size;
  }

  #wait(q: Queued): void {
    q.waits = true;
    q.slot.waiting++;
    q.slot.waitingBytes += q.size;
    this.#waitingBytes += q.size;
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
      for (const q of queue) {
        this.#unwait(q);
        this.#fail(q.owner, e as Error);
      }
      return;
    }
    this.#flushing = false;
    const queue = this.#queue;
    this.#queue = [];
    // Partitions whose records wait from here on (at their bound, or an earlier record waits)
    // are those with `heldAt` this flush.
    const flush = ++this.#flushes;
    let entries: Queued[] = [];
    let owners: Pending[] = [];
    let keys = new Set<Slot>();
    let last: Slot | undefined;
    let size = 0;
    let request = ++this.#request;
    for (const q of queue) {
      this.#unwait(q);
      if (q.owner.failed) continue; // its caller heard already: the rest is not written
      const n = q.size;
      if (entries.length > 0 && size + n > REQUEST_BYTES) {
        this.#send(entries, owners, keys);
        entries = [];
        owners = [];
        keys = new Set();
        last = undefined;
        size = 0;
        request = ++this.#request;
      }
      // (A turn's records mostly go to one partition: the set is asked when it changes.)
      const slot = q.slot;
      if (slot !== last && !keys.has(slot)) {
        // The partition's first record in this request: it goes if the partition has room.
        if (slot.heldAt === flush || slot.inFlight >= REQUESTS_IN_FLIGHT) {
          slot.heldAt = flush;
          this.#wait(q);
          this.#queue.push(q);
          continue;
        }
        keys.add(slot);
        slot.inFlight++;
      }
      last = slot;
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
  #send(entries: Queued[], owners: Pending[], keys: Set<Slot>): void {
    for (const o of owners) o.requests++;
    // Only once some partitions are written before the rest: those, and per caller its records
    // here not written yet (a caller at 0 has heard).
    let released: Set<Slot> | undefined;
    let left: Map<Pending, number> | undefined;
    let settled = false;
    const written: Written = (done) => {
      if (settled) return;
      const now = new Set<Slot>();
      for (const r of done) {
        const slot = this.#slotOf(r.topic, r.partition);
        if (keys.has(slot) && !released?.has(slot)) now.add(slot);
      }
      if (now.size === 0) return;
      if (left === undefined) {
        left = new Map();
        for (const q of entries) left.set(q.owner, (left.get(q.owner) ?? 0) + 1);
      }
      released ??= new Set();
      for (const slot of now) {
        released.add(slot);
        this.#release(slot);
      }
      for (const q of entries) {
        if (!now.has(q.slot)) continue;
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
      for (const slot of keys) if (!released?.has(slot)) this.#release(slot);
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  // One request holding records of `owner` is answered.
  #answered(owner: Pending): void {
    if (--owner.requests === 0 && owner.unsent === 0 && !owner.failed) owner.resolve();
  }

  // A request no longer holds the partition.
  #release(slot: Slot): void {
    slot.inFlight--;
  }

  #fail(owner: Pending, e: Error): void {
    if (owner.failed) return;
    owner.failed = true;
    owner.reject(e);
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
