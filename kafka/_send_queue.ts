// Coalesced produce, shared by the Kafka clients: records sent in the same turn of the event
// loop share produce requests (pipelining many small events), each request at most
// REQUEST_BYTES, because the broker refuses a batch over its `message.max.bytes` (1 MiB by
// default). A turn's requests go out REQUESTS_IN_FLIGHT at a time rather than one after the other's
// answer: a large event's blocks span several requests, and waiting for each answer capped large
// payloads at one request per round trip. Each caller resolves when all the requests that hold
// its records are answered. The broker handles one connection's requests in order, so order is
// kept, except where a request is tried again after a failure: it then lands after those behind
// it (turns already overlapped so: the next turn's requests never waited for this one's).
import type { OutRecord } from "./client.ts";

/** The most a produce request carries. */
export const REQUEST_BYTES = 512 * 1024;

/** A turn's produce requests unanswered at once (a 5 MB event is ten). */
export const REQUESTS_IN_FLIGHT = 4;

interface Pending {
  records: OutRecord[];
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Queues records and writes what one turn of the event loop queued with `write`. */
export class SendQueue {
  #queue: Pending[] = [];
  readonly #write: (records: OutRecord[]) => Promise<void>;
  readonly #ready: () => Promise<unknown>;

  /**
   * @param write Writes one request's records (any topics), resolving when the broker has them.
   * @param ready Resolves when writing can start (the producer connected); a rejection fails
   * the turn's callers with it.
   */
  constructor(write: (records: OutRecord[]) => Promise<void>, ready: () => Promise<unknown>) {
    this.#write = write;
    this.#ready = ready;
  }

  /** Queues `records`; resolves when the broker has them all. */
  send(records: OutRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, resolve, reject });
      if (this.#queue.length === 1) queueMicrotask(() => this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const queue = this.#queue;
    this.#queue = [];
    try {
      await this.#ready();
    } catch (e) {
      for (const q of queue) q.reject(e as Error);
      return;
    }
    // The turn's records cut into requests; the last request that holds each caller's records.
    const requests: OutRecord[][] = [];
    const last: number[] = [];
    const first: number[] = [];
    let chunk: OutRecord[] = [];
    let size = 0;
    for (const q of queue) {
      let from = -1;
      for (const r of q.records) {
        const n = typeof r.value === "string" ? r.value.length * 3 : r.value.byteLength;
        if (chunk.length > 0 && size + n > REQUEST_BYTES) {
          requests.push(chunk);
          chunk = [];
          size = 0;
        }
        if (from < 0) from = requests.length;
        chunk.push(r);
        size += n;
      }
      first.push(from);
      last.push(requests.length);
    }
    if (chunk.length > 0) requests.push(chunk);
    const written: Promise<void>[] = [];
    let caller = 0;
    for (let i = 0; i < requests.length; i++) {
      if (i >= REQUESTS_IN_FLIGHT) await written[i - REQUESTS_IN_FLIGHT].catch(() => {});
      const w = this.#write(requests[i]);
      w.catch(() => {}); // its callers hear of a failure; they may only come to it after a wait
      written.push(w);
      // Callers whose records are all written or on their way hear when their requests are.
      for (; caller < queue.length && last[caller] <= i; caller++) {
        const q = queue[caller];
        if (q.records.length === 0) q.resolve();
        else Promise.all(written.slice(first[caller], last[caller] + 1)).then(q.resolve, q.reject);
      }
    }
    for (; caller < queue.length; caller++) queue[caller].resolve(); // without records
  }
}
