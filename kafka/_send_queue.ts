// Coalesced produce, shared by the Kafka clients: records sent in the same turn of the event
// loop share produce requests (pipelining many small events), each request at most
// REQUEST_BYTES, because the broker refuses a batch over its `message.max.bytes` (1 MiB by
// default). Order is kept; each caller resolves when its last record is written.
import type { OutRecord } from "./client.ts";

/** The most a produce request carries. */
export const REQUEST_BYTES = 512 * 1024;

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
    let chunk: OutRecord[] = [];
    let waiting: Pending[] = [];
    let size = 0;
    const sendChunk = async () => {
      const callers = waiting;
      const records = chunk;
      chunk = [];
      waiting = [];
      size = 0;
      try {
        await this.#write(records);
        for (const c of callers) c.resolve();
      } catch (e) {
        for (const c of callers) c.reject(e as Error);
        return false;
      }
      return true;
    };
    const failed = new Set<Pending>();
    for (const q of queue) {
      for (const r of q.records) {
        const n = typeof r.value === "string" ? r.value.length * 3 : r.value.byteLength;
        if (chunk.length > 0 && size + n > REQUEST_BYTES) {
          // A caller whose records span requests resolves with the last one.
          const ok = await sendChunk();
          if (!ok) failed.add(q);
        }
        chunk.push(r);
        size += n;
      }
      if (failed.has(q)) q.reject(new Error("Kafka produce failed"));
      else waiting.push(q);
    }
    if (chunk.length > 0 || waiting.length > 0) await sendChunk();
  }
}
