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
    // The turn's records cut into requests. A caller whose records one request holds (nearly
    // every caller) hears from that request's ending; one whose records span several, from all.
    const requests: OutRecord[][] = [];
    const callersOf: Pending[][] = [];
    const spanning: { q: Pending; from: number; to: number }[] = [];
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
      if (from < 0) q.resolve(); // nothing to write
      else if (from === requests.length) (callersOf[from] ??= []).push(q);
      else spanning.push({ q, from, to: requests.length });
    }
    if (chunk.length > 0) requests.push(chunk);
    const written: Promise<void>[] = [];
    let next = 0;
    for (let i = 0; i < requests.length; i++) {
      if (i >= REQUESTS_IN_FLIGHT) await written[i - REQUESTS_IN_FLIGHT].catch(() => {});
      const callers = callersOf[i] ?? [];
      const w = this.#write(requests[i]);
      // Handled here at once, so a failure is never unhandled while spanning callers wait.
      w.then(() => {
        for (const q of callers) q.resolve();
      }, (e) => {
        for (const q of callers) q.reject(e as Error);
      });
      written.push(w);
      for (; next < spanning.length && spanning[next].to <= i; next++) {
        const { q, from, to } = spanning[next];
        Promise.all(written.slice(from, to + 1)).then(() => q.resolve(), q.reject);
      }
    }
  }
}
