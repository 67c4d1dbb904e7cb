// A Kafka client whose library is loaded when it is first used: the npm package lists each
// client library as an optional peer dependency, so an application installs only the one it
// uses (none for the bus alone), and `kafka.client=kafkajs` loads kafkajs only then.
import { ConsumerStopped } from "./client.ts";
import type {
  ConsumeOptions,
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";

const NONE: Readonly<TrafficCounters> = Object.freeze({
  produceRequests: 0,
  recordsSent: 0,
  batchesRead: 0,
  recordsRead: 0,
});

/** A {@link KafkaClient} made by `load` on first use, which it then stands for. */
export class DeferredClient implements KafkaClient {
  /** The bootstrap brokers. */
  readonly brokers: readonly string[];
  readonly #load: () => Promise<KafkaClient>;
  #loading: Promise<KafkaClient> | undefined;
  #client: KafkaClient | undefined;

  /**
   * @param brokers The bootstrap brokers (known before the library is).
   * @param load Loads the library and makes the client; a failure (the library is not
   * installed, say) fails the call that needed it, and the next call tries again.
   */
  constructor(brokers: readonly string[], load: () => Promise<KafkaClient>) {
    this.brokers = brokers;
    this.#load = load;
  }

  #get(): Promise<KafkaClient> {
    if (this.#client !== undefined) return Promise.resolve(this.#client);
    this.#loading ??= this.#load().then((c) => (this.#client = c), (e) => {
      this.#loading = undefined;
      throw e;
    });
    return this.#loading;
  }

  /** The client's counters (zeros until it is loaded). */
  get counters(): Readonly<TrafficCounters> {
    return this.#client?.counters ?? NONE;
  }

  /** Whether Kafka answers (true until the client is loaded and says otherwise). */
  get available(): boolean {
    return this.#client?.available ?? true;
  }

  /** See {@link KafkaClient.onAvailability}: the loaded client's, once it is there. */
  onAvailability(listener: () => void): () => void {
    let off: (() => void) | undefined;
    let stopped = false;
    this.#get().then((c) => {
      if (stopped) return;
      // A client without it: its watcher has nothing to go by, so it is told every second.
      if (c.onAvailability !== undefined) off = c.onAvailability(listener);
      else {
        const timer = setInterval(listener, 1000);
        off = () => clearInterval(timer);
      }
    }, () => {});
    return () => {
      stopped = true;
      off?.();
    };
  }

  send(records: OutRecord[]): Promise<void> {
    // Per event: straight to the client once it is there (no promise hop on the hot path).
    const client = this.#client;
    return client !== undefined ? client.send(records) : this.#get().then((c) => c.send(records));
  }

  prepareSend(topic: string, partition: number): Promise<void> {
    return this.#get().then((c) => c.prepareSend?.(topic, partition), () => {});
  }

  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    options?: ConsumeOptions,
  ): PartitionConsumer {
    let stopped = false;
    let inner: PartitionConsumer | undefined;
    const ready = this.#get().then((c) => {
      if (stopped) throw new ConsumerStopped(topic, partition);
      inner = c.consumePartition(topic, partition, onRecord, options);
      return inner.ready;
    });
    ready.catch(() => {}); // a caller that never awaits `ready` must not see it fail
    return {
      topic,
      partition,
      ready,
      get lag() {
        return inner?.lag;
      },
      stop: async () => {
        stopped = true;
        await inner?.stop();
      },
    };
  }

  ensureTopic(topic: string, partitions: number): Promise<number> {
    return this.#get().then((c) => c.ensureTopic(topic, partitions));
  }

  createPartitions(topic: string, count: number): Promise<void> {
    return this.#get().then((c) => c.createPartitions(topic, count));
  }

  topicPartitions(only?: readonly string[]): Promise<Map<string, number>> {
    return this.#get().then((c) => c.topicPartitions(only));
  }

  loopback(topic: string, partition: number, timeoutMs?: number): Promise<number> {
    return this.#get().then((c) => c.loopback(topic, partition, timeoutMs));
  }

  async close(): Promise<void> {
    const loading = this.#loading;
    this.#loading = Promise.reject(new Error("Kafka client is closed"));
    this.#loading.catch(() => {});
    const client = this.#client ?? await loading?.catch(() => undefined);
    await client?.close();
  }
}
