// Whether Kafka answers, as both clients judge it: a failed connection to the only broker (or to
// every broker of a cluster) makes the mesh fail at once instead of waiting on retries; one
// broker of several gone is a leader change, which Kafka settles by itself. While down, the
// broker is asked once a second whether it is back; any answer marks it up.
import { logger } from "../bus/_log.ts";

const log = logger("kafka");

/** A broker counts as failing this long after its last connection error. */
const FAILING_MS = 10_000;

/** The availability of one client's cluster (see {@link KafkaClient.available}). */
export class Availability {
  readonly #brokers: readonly string[];
  readonly #clusterSize: () => number | undefined;
  readonly #ask: () => Promise<unknown>;
  /** Brokers whose connection failed, with when it last did (ms). */
  #failing = new Map<string, number>();
  #available = true;
  #lastErrorAt = 0;
  #probe: ReturnType<typeof setInterval> | undefined;
  #probing = false;
  #closed = false;
  /** Aborted when the broker turns unavailable: a loopback in flight ends then, not at its timeout. */
  #down = new AbortController();

  /**
   * @param brokers The bootstrap brokers.
   * @param clusterSize How many brokers the cluster has, once known.
   * @param ask Asks the broker something (a metadata request), while it is down.
   */
  constructor(
    brokers: readonly string[],
    clusterSize: () => number | undefined,
    ask: () => Promise<unknown>,
  ) {
    this.#brokers = brokers;
    this.#clusterSize = clusterSize;
    this.#ask = ask;
  }

  /** False while the broker is unreachable. */
  get available(): boolean {
    return this.#available;
  }

  /** Aborted when the broker turns unavailable. */
  get signal(): AbortSignal {
    return this.#down.signal;
  }

  /** A connection failed: to `broker` when known. */
  down(why: string, broker?: string): void {
    const now = Date.now();
    this.#lastErrorAt = now;
    if (this.#closed) return;
    if (broker !== undefined) {
      const before = this.#failing.get(broker);
      this.#failing.set(broker, now);
      let recent = 0;
      for (const at of this.#failing.values()) if (now - at < FAILING_MS) recent++;
      const cluster = Math.max(this.#brokers.length, this.#clusterSize() ?? 0);
      if (recent < cluster) {
        if (before === undefined || now - before >= FAILING_MS) {
          log.warn("Kafka broker {broker} is unreachable ({why}); {n} other(s) answer", {
            broker,
            why,
            n: cluster - recent,
          });
        }
        return;
      }
    }
    if (!this.#available) return;
    this.#available = false;
    this.#down.abort(new Error("Kafka is unreachable"));
    log.warn("Kafka is unreachable: {why}", { why });
    // Nothing is sent meanwhile and consumers reconnect at their own pace.
    this.#probe ??= setInterval(() => {
      if (this.#available || this.#closed) {
        clearInterval(this.#probe);
        this.#probe = undefined;
      } else if (!this.#probing) {
        this.#probing = true;
        this.#ask().catch(() => {}).finally(() => (this.#probing = false));
      }
    }, 1000);
  }

  /**
   * The broker answered (a fetch, a produce): cheap when nothing changes. An answer within a
   * second of a connection error may be one that was in flight when the broker went, so it does
   * not count.
   */
  up(): void {
    if (this.#available || Date.now() - this.#lastErrorAt < 1000) return;
    this.#available = true;
    this.#failing.clear();
    this.#down = new AbortController();
    log.info("Kafka answers again");
  }

  /** Stops asking. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#probe);
  }
}
