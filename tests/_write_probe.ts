// Kafka's write availability as the mesh's partitions see it, measured from outside the mesh:
// a write with the mesh's settings (acks=all) to each partition every PROBE_EVERY_MS, and when
// it was acknowledged. The fault suite (tests/broker/hosts_test.ts) uses it to tell a request that
// failed because Kafka could not take a write on its path in time (no provider was reachable
// through Kafka) from one that failed although a path was there. The probe's records are start
// tokens of nobody (INIT_HEADER), which every reader skips.
import { INIT_HEADER } from "../kafka/client.ts";
import type { KafkaClient } from "../kafka/client.ts";
import { splitVirtualTopic } from "../kafka/records.ts";

const PROBE_EVERY_MS = 200;
/** A write acknowledged within this is prompt: Kafka takes writes there as usual. */
const PROMPT_MS = 1000;

function isPrompt(w: Write): boolean {
  return !w.failed && w.acked !== undefined && w.acked - w.sent <= PROMPT_MS;
}

/** One probe write: when it left, and when it was acknowledged (never: undefined). */
export interface Write {
  sent: number;
  acked?: number;
  failed?: boolean;
}

/** Probes the virtual topics (partitions) it is given while started. */
export class WriteProbe {
  readonly #kafka: KafkaClient;
  readonly #writes = new Map<string, Write[]>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(kafka: KafkaClient) {
    this.#kafka = kafka;
  }

  /** Starts writing to each of the virtual topics (partitions) `leases()` gives. */
  start(leases: () => Iterable<string>): void {
    this.stop();
    this.#timer = setInterval(() => {
      for (const lease of leases()) {
        const [topic, partition] = splitVirtualTopic(lease);
        const w: Write = { sent: Date.now() };
        let list = this.#writes.get(lease);
        if (list === undefined) this.#writes.set(lease, list = []);
        list.push(w);
        this.#kafka.send([{ topic, partition, headers: { [INIT_HEADER]: "probe" }, value: "init" }])
          .then(() => (w.acked = Date.now()), () => (w.failed = true));
      }
    }, PROBE_EVERY_MS);
  }

  /** Every write made, per virtual topic (for a run's logs). */
  history(): Record<string, readonly Write[]> {
    return Object.fromEntries(this.#writes);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Whether a write to the virtual topic `lease` could not be made within (`from`, `to`): one
   * that left in [from, to - 1000] failed, or was acknowledged only after `to` (or never).
   */
  blocked(lease: string, from: number, to: number): boolean {
    for (const w of this.#writes.get(lease) ?? []) {
      if (w.sent < from || w.sent > to - 1000) continue;
      if (w.failed || w.acked === undefined || w.acked > to) return true;
    }
    return false;
  }

  /**
   * Whether every write to the virtual topic `lease` that left in [from, to] was acknowledged
   * within a second (and at least one left): Kafka takes writes there as usual.
   */
  prompt(lease: string, from: number, to: number): boolean {
    const writes = this.#writes.get(lease) ?? [];
    return writes.some((w) => w.sent >= from && w.sent <= to) &&
      this.slowUntil(lease, from, to) === from;
  }

  /**
   * When the last write to the virtual topic `lease` that left in [from, to] and was not
   * acknowledged within a second ended (acknowledged, or failed a second after it left); `from`
   * when every one was prompt: when Kafka's stall there ended.
   */
  slowUntil(lease: string, from: number, to: number): number {
    let until = from;
    for (const w of this.#writes.get(lease) ?? []) {
      if (w.sent < from || w.sent > to) continue;
      if (isPrompt(w)) continue;
      until = Math.max(until, w.failed || w.acked === undefined ? w.sent + PROMPT_MS : w.acked);
    }
    return until;
  }

  /**
   * When the virtual topic `lease` took a write again after `from`: the earliest acknowledgement
   * of a write that left at or after it (Infinity: none was).
   */
  openedAt(lease: string, from: number): number {
    let at = Infinity;
    for (const w of this.#writes.get(lease) ?? []) {
      if (w.sent >= from && !w.failed && w.acked !== undefined) at = Math.min(at, w.acked);
    }
    return at;
  }

  /** The longest stretch (ms) in which no write left that was acknowledged within 1 s. */
  longestOutage(lease: string, from: number, to: number): number {
    let longest = 0, since = from;
    for (const w of this.#writes.get(lease) ?? []) {
      if (w.sent < from || w.sent > to) continue;
      if (isPrompt(w)) {
        longest = Math.max(longest, w.sent - since);
        since = w.sent;
      }
    }
    return Math.max(longest, to - since);
  }
}
