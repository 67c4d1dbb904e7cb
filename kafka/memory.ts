/**
 * Kafka in memory, for unit tests of everything above the link (connector, monitor, routing,
 * failover) without a broker: a {@link MemoryKafka} cluster of topics and partitions, and
 * clients on it that behave as {@link KafkaLink} does (explicit partitions, no automatic topic
 * creation, consumers from the latest offset, records in order, loopbacks), plus faults on
 * demand: {@link MemoryKafka.available} set to false makes every call fail as an unreachable
 * broker does, and {@link MemoryKafka.wipe} loses every topic as a re-formatted broker does.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { MemoryKafka } from "./memory.ts";
 * const kafka = new MemoryKafka();
 * const a = kafka.client(), b = kafka.client();
 * await a.ensureTopic("demo", 2);
 * const got: string[] = [];
 * await b.consumePartition("demo", 1, (r) => void got.push(new TextDecoder().decode(r.value))).ready;
 * await a.send([{ topic: "demo", partition: 1, value: "hi" }]);
 * await kafka.settled();
 * assert.deepEqual(got, ["hi"]);
 * ```
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import { randomHex32 } from "../bus/_ids.ts";
import { LOOPBACK_HEADER, loopbackRoundTrip } from "./client.ts";
import type {
  ConsumeOptions,
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";

const log = logger("kafka");
const encoder = new TextEncoder();

interface Reader {
  onRecord(record: InRecord): void | Promise<void>;
  client: MemoryKafkaClient;
  chain: Promise<void>;
}

interface Partition {
  next: number;
  /** The latest records, for readers that start at a time (at most {@link KEPT} of them). */
  kept: InRecord[];
}

/** Records each partition keeps for readers that start at a time. */
const KEPT = 10_000;

/** A Kafka cluster in memory. */
export class MemoryKafka {
  /** When false, every call of every client fails as with an unreachable broker. */
  available = true;
  /** Every record written, in order (for assertions). */
  readonly written: OutRecord[] = [];
  /** Milliseconds a new consumer takes to become ready (a real one takes a group join). */
  consumerReadyMs = 0;
  /** Milliseconds each send waits before it is written (a slow, overloaded cluster). */
  sendLatencyMs = 0;
  readonly #topics = new Map<string, Partition[]>();
  // By "topic partition": consumers outlive their topic, as a kafkajs consumer waits for it.
  readonly #readers = new Map<string, Set<Reader>>();
  #pending = new Set<Promise<void>>();

  /** A new client of this cluster. */
  client(brokers: readonly string[] = ["memory:9092"]): MemoryKafkaClient {
    return new MemoryKafkaClient(this, brokers);
  }

  /** Resolves once every record written so far has been handled by its readers. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** How many consumers read a partition now. */
  readers(topic: string, partition: number): number {
    return this.#readers.get(`${topic} ${partition}`)?.size ?? 0;
  }

  /**
   * Loses every topic and record, as a broker restarted empty does; consumers keep waiting on
   * their partitions and read them from the start once they exist again.
   */
  wipe(): void {
    this.#topics.clear();
  }

  /** @internal The consumers of one partition. */
  readersOf(topic: string, partition: number): Set<Reader> {
    const key = `${topic} ${partition}`;
    let set = this.#readers.get(key);
    if (set === undefined) this.#readers.set(key, set = new Set());
    return set;
  }

  /** Topic name → partition count. */
  topics(): Map<string, number> {
    return new Map([...this.#topics].map(([t, p]) => [t, p.length]));
  }

  /** Creates a topic (no-op when it exists); returns its partition count. */
  createTopic(topic: string, partitions: number): number {
    let p = this.#topics.get(topic);
    if (p === undefined) {
      p = Array.from({ length: partitions }, () => ({ next: 0, kept: [] }));
      this.#topics.set(topic, p);
    }
    return p.length;
  }

  /** Grows a topic to `count` partitions. */
  createPartitions(topic: string, count: number): void {
    const p = this.#topics.get(topic);
    if (p === undefined) throw new Error(`This server does not host this topic (${topic})`);
    while (p.length < count) p.push({ next: 0, kept: [] });
  }

  readonly #stalls = new Map<string, PromiseWithResolvers<void>>();

  /**
   * Stalls writes to one partition (its leader away, say): they wait, unacknowledged, until
   * `on` is false again; then they are written in order.
   */
  stall(topic: string, partition: number, on = true): void {
    const key = `${topic}-${partition}`;
    if (on && !this.#stalls.has(key)) this.#stalls.set(key, Promise.withResolvers<void>());
    if (!on) {
      this.#stalls.get(key)?.resolve();
      this.#stalls.delete(key);
    }
  }

  /** @internal Resolves when writes to the partition may go on (undefined: at once). */
  stalled(topic: string, partition: number): Promise<void> | undefined {
    return this.#stalls.size === 0 ? undefined : this.#stalls.get(`${topic}-${partition}`)?.promise;
  }

  /** @internal */
  check(): void {
    if (!this.available) throw new Error("Connection error: memory broker unavailable");
  }

  /** @internal */
  partition(topic: string, partition: number): Partition {
    const p = this.#topics.get(topic)?.[partition];
    if (p === undefined) {
      throw new Error(`This server does not host this topic-partition (${topic}-${partition})`);
    }
    return p;
  }

  /** @internal */
  write(r: OutRecord): void {
    const p = this.partition(r.topic, r.partition);
    this.written.push(r);
    const record: InRecord = {
      topic: r.topic,
      partition: r.partition,
      offset: String(p.next++),
      key: r.key ?? randomHex32(),
      headers: { ...r.headers },
      value: typeof r.value === "string" ? encoder.encode(r.value) : r.value,
      timestamp: Date.now(),
    };
    if (p.kept.push(record) > KEPT) p.kept.shift();
    for (const reader of this.readersOf(r.topic, r.partition)) this.deliver(reader, record);
  }

  /** @internal Hands `record` to `reader` after what it was handed before. */
  deliver(reader: Reader, record: InRecord): void {
    const done = reader.chain.then(() => reader.client.handle(reader, record));
    reader.chain = done;
    this.#pending.add(done);
    done.finally(() => this.#pending.delete(done));
  }
}

/** A client of a {@link MemoryKafka} cluster. */
export class MemoryKafkaClient implements KafkaClient {
  /** The brokers it says it talks to. */
  readonly brokers: readonly string[];
  /** Traffic counters. */
  readonly counters: TrafficCounters = {
    produceRequests: 0,
    recordsSent: 0,
    batchesRead: 0,
    recordsRead: 0,
  };
  readonly #cluster: MemoryKafka;
  readonly #consumers = new Set<PartitionConsumer>();
  readonly #loopbacks = new Map<string, () => void>();
  #closed = false;
  /** Set while {@link MemoryKafkaClient.cutOff}: what it reads waits for it. */
  #back: PromiseWithResolvers<void> | undefined;

  /** A client of `cluster`; {@link MemoryKafka.client} makes one. */
  constructor(cluster: MemoryKafka, brokers: readonly string[]) {
    this.#cluster = cluster;
    this.brokers = brokers;
  }

  /** False while the cluster is {@link MemoryKafka.available unavailable}, or this client cut off. */
  get available(): boolean {
    return this.#cluster.available && this.#back === undefined;
  }

  /**
   * True cuts this client alone off the cluster, as a host whose links to the brokers are
   * down: its calls fail, and the records it reads wait until it is set back to false.
   */
  get cutOff(): boolean {
    return this.#back !== undefined;
  }
  set cutOff(cut: boolean) {
    if (cut) this.#back ??= Promise.withResolvers<void>();
    else {
      this.#back?.resolve();
      this.#back = undefined;
    }
  }

  /** Writes records in order; rejects (writing none) when one names a missing partition. */
  send(records: OutRecord[]): Promise<void> {
    for (const r of records) {
      const stalled = this.#cluster.stalled(r.topic, r.partition);
      if (stalled !== undefined) return stalled.then(() => this.send(records));
    }
    const latency = this.#cluster.sendLatencyMs;
    if (latency > 0) {
      return new Promise((r) => setTimeout(r, latency)).then(() => this.#write(records));
    }
    return this.#write(records);
  }

  #write(records: OutRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Kafka link is closed"));
    return this.#call(() => {
      for (const r of records) this.#cluster.partition(r.topic, r.partition);
      this.counters.produceRequests++;
      this.counters.recordsSent += records.length;
      for (const r of records) this.#cluster.write(r);
    });
  }

  /** Reads one partition from now on (or from the records it keeps since `options.since`). */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    options: ConsumeOptions = {},
  ): PartitionConsumer {
    const reader: Reader = { onRecord, client: this, chain: Promise.resolve() };
    let ready: Promise<void>;
    let readers: Set<Reader> | undefined;
    try {
      this.#cluster.check();
      const p = this.#cluster.partition(topic, partition);
      const since = options.since;
      if (since !== undefined) {
        for (const r of p.kept) if (r.timestamp! >= since) this.#cluster.deliver(reader, r);
      }
      readers = this.#cluster.readersOf(topic, partition);
      readers.add(reader);
      const delay = this.#cluster.consumerReadyMs;
      ready = delay > 0 ? new Promise((r) => setTimeout(r, delay)) : Promise.resolve();
    } catch (e) {
      ready = Promise.reject(e);
      ready.catch(() => {});
    }
    const handle: PartitionConsumer = {
      topic,
      partition,
      ready,
      stop: () => {
        readers?.delete(reader);
        this.#consumers.delete(handle);
        return Promise.resolve();
      },
    };
    this.#consumers.add(handle);
    return handle;
  }

  /** @internal Hands a record to one reader, as a consumer of this client. */
  async handle(reader: Reader, record: InRecord): Promise<void> {
    if (this.#back !== undefined) await this.#back.promise;
    if (!this.#cluster.available) return;
    const loopback = record.headers[LOOPBACK_HEADER];
    if (loopback !== undefined) return void this.#loopbacks.get(loopback)?.();
    this.counters.recordsRead++;
    try {
      await reader.onRecord(record);
    } catch (e) {
      log.error("Record {offset} of {topic}-{partition} failed: {message}", {
        offset: record.offset,
        topic: record.topic,
        partition: record.partition,
        message: (e as Error).message,
      });
    }
  }

  /** Creates the topic when missing; returns its partition count. */
  ensureTopic(topic: string, partitions: number): Promise<number> {
    return this.#call(() => this.#cluster.createTopic(topic, partitions));
  }

  /** Grows a topic to `count` partitions. */
  createPartitions(topic: string, count: number): Promise<void> {
    return this.#call(() => this.#cluster.createPartitions(topic, count));
  }

  /** Topic name → partition count. */
  topicPartitions(): Promise<Map<string, number>> {
    return this.#call(() => this.#cluster.topics());
  }

  // A call to the cluster, failing (as a rejection) as an unreachable broker would.
  #call<T>(f: () => T): Promise<T> {
    try {
      if (this.#back !== undefined) throw new Error("Connection error: memory broker unreachable");
      this.#cluster.check();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A record to a partition this client reads, and back; the round trip in ms. */
  loopback(topic: string, partition: number, timeoutMs = 5000): Promise<number> {
    return loopbackRoundTrip((r) => this.send(r), this.#loopbacks, topic, partition, timeoutMs);
  }

  /** Stops every consumer. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#consumers].map((c) => c.stop()));
  }
}
