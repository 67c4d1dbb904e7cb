/**
 * A {@link KafkaClient} over `@platformatic/kafka` (`kafka.client=platformatic`).
 *
 * No consumer groups: a {@link PartitionConsumer} asks the partition's leader for its end offset
 * and then fetches from the offset it keeps itself, so nothing ever rebalances, a broker restart
 * never moves it (it resumes exactly after the last record it handled) and nothing is committed.
 * Whether the log it resumes is the one it read is checked after every interruption: the topic's
 * id must be the same and the last record handled must still be there with its key; otherwise
 * the log was replaced (the topic deleted and created again, or the broker's data lost) and it is
 * read from its start.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import { Admin, Consumer, findErrorBy, ListOffsetTimestamps, Producer } from "@platformatic/kafka";
import type { BaseOptions, Connection, MessageToProduce } from "@platformatic/kafka";
import { logger } from "../bus/_log.ts";
import { randomHex32 } from "../bus/_ids.ts";
import { ConfigError } from "../bus/errors.ts";
import { packageVersion, registerLibrary } from "../bus/libraries.ts";
import { INIT_HEADER, LOOPBACK_HEADER, loopbackRoundTrip } from "./client.ts";
import type {
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";
import { SendQueue } from "./_send_queue.ts";
import { produceDirect } from "./_produce.ts";
import type { ProduceRecord } from "./_produce.ts";
import { asBuffer, bytesOf, HEADER_NAMES, HeaderValues, sameBytes, textOf } from "./_bytes.ts";
import { fetchPartition, fromLibrary, topicIdBytes } from "./_fetch.ts";
import type { FetchedBatch, FetchedPartition, FetchedRecord } from "./_fetch.ts";
import { RecentKeys } from "./_recent_keys.ts";
import { Availability } from "./_availability.ts";
import { ensureTopic, growTopic } from "./_topics.ts";
import type { TopicAdmin } from "./_topics.ts";
import type { KafkaLinkOptions } from "./link.ts";
import type { TopicMode } from "./properties.ts";

const log = logger("kafka");
registerLibrary("@platformatic/kafka", packageVersion("@platformatic/kafka", import.meta.url));

/** How long a fetch waits at the broker for a record (a stop ends it at once). */
const FETCH_WAIT_MS = 500;
const FETCH_BYTES = 4 * 1024 * 1024;
const CONTROL_BATCH = 0x20;
/** Keys a reader remembers: at most this, at least half (a retried produce lands within seconds). */
const RECENT_KEYS = 32_768;
/** How long a produce is tried again while its partition has no reachable leader. */
const PRODUCE_RETRY_MS = 35_000;
/** Broker answers that say the records were not written, and that a later try may succeed. */
const NOT_WRITTEN = [
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "NOT_ENOUGH_REPLICAS",
  "KAFKA_STORAGE_ERROR",
];

type Client = Admin | Producer | Consumer;

/** The reason a consumer's `ready` rejects when it was stopped first. */
class ConsumerStopped extends Error {
  constructor(topic: string, partition: number) {
    super(`Consumer of ${topic}-${partition} stopped`);
    this.name = "ConsumerStopped";
  }
}

function isNetwork(e: unknown): boolean {
  return findErrorBy(e as Error, "code", "PLT_KFK_NETWORK") !== null ||
    findErrorBy(e as Error, "code", "PLT_KFK_TIMEOUT") !== null;
}

/**
 * Whether a failed produce may succeed when tried again: the broker refused the records (a
 * leader moved), or the connection failed (the broker restarts). A connection lost after the
 * request went out may have written the records: tried again, they are there twice, with one
 * key, which the reader skips (see `RecentKeys`).
 */
function retriable(e: unknown): boolean {
  return NOT_WRITTEN.some((id) => apiError(e, id)) || isNetwork(e);
}

function apiError(e: unknown, id: string): boolean {
  return findErrorBy(e as Error, "apiId", id) !== null;
}

/**
 * The error with its causes in its message: the library nests the one that says what happened
 * (`connect ECONNREFUSED`, a TLS or SASL failure) under summaries ("Listing topics failed.").
 */
function explained(e: unknown): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  const chain = [e.message.replace(/\.$/, "")];
  let at: unknown = e;
  for (let depth = 0; depth < 8; depth++) {
    const nested = (at as { errors?: unknown[] }).errors;
    const next = nested?.[nested.length - 1] ?? (at as Error).cause;
    if (!(next instanceof Error)) break;
    const text = next.message.replace(/\.$/, "");
    if (!chain.includes(text)) chain.push(text);
    at = next;
  }
  return new Error(chain.join(": "), { cause: e });
}

const HEADER_VALUES = new HeaderValues();

// A record as the library's encoder takes it: Buffers, and its headers in a Map.
function forLibrary(r: ProduceRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  for (let i = 0; i < r.headers.length; i += 2) {
    headers.set(asBuffer(r.headers[i]), asBuffer(r.headers[i + 1]));
  }
  return { ...r, key: asBuffer(r.key), value: asBuffer(r.value), headers };
}

const NO_KEY = new Uint8Array(0);

/** A record handed to `onRecord`: its key and offset become strings only when asked for. */
class Delivered implements InRecord {
  readonly #key: Uint8Array | null;
  readonly #offset: number;
  constructor(
    readonly topic: string,
    readonly partition: number,
    offset: number,
    key: Uint8Array | null,
    readonly headers: Record<string, string>,
    readonly value: Uint8Array,
    readonly timestamp: number,
  ) {
    this.#offset = offset;
    this.#key = key;
  }
  get offset(): string {
    return String(this.#offset);
  }
  get key(): string | undefined {
    return this.#key === null ? undefined : textOf(this.#key);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A connection to a Kafka cluster over `@platformatic/kafka`: a producer, an admin client and
 * one fetch loop per partition consumed, each on connections of its own (a fetch waiting at the
 * broker never holds a produce request back).
 *
 * @example
 * ```ts
 * import { PlatformaticLink } from "./platformatic.ts";
 * // Needs a broker, so it is a function here: the doc test type-checks it without calling it.
 * export async function hello(): Promise<void> {
 *   const link = new PlatformaticLink({ brokers: ["127.0.0.1:9092"], clientId: "demo" });
 *   await link.ensureTopic("demo.topic", 2);
 *   const c = link.consumePartition("demo.topic", 1, (r) => console.log(r.value));
 *   await c.ready;
 *   await link.send([{ topic: "demo.topic", partition: 1, value: "hi" }]);
 *   await link.close();
 * }
 * ```
 */
export class PlatformaticLink implements KafkaClient {
  /** The bootstrap brokers. */
  readonly brokers: string[];
  /** Traffic counters: produce requests and records sent, fetched batches and records read. */
  readonly counters: TrafficCounters = {
    produceRequests: 0,
    recordsSent: 0,
    batchesRead: 0,
    recordsRead: 0,
  };
  readonly #base: BaseOptions;
  readonly #acks: -1 | 0 | 1;
  readonly #retryBackoffMs: number;
  readonly #replicationFactor: number;
  readonly #topics: TopicMode;
  #brokerCount: number | undefined;
  #producer: Producer | undefined;
  #admin: Admin | undefined;
  #consumers = new Set<PartitionConsumer>();
  /** Every open broker connection of this link's clients. */
  #connections = new Set<Connection>();
  #loopbacks = new Map<string, () => void>();
  readonly #sends: SendQueue;
  #closed = false;
  readonly #health: Availability;
  /** What the partition readers report to the link. */
  readonly #readerLink: ReaderLink = {
    counters: this.counters,
    answered: () => this.#health.up(),
    waiting: (expectMs) => this.#health.waiting(expectMs),
    loopedBack: (nonce) => this.#loopbacks.get(nonce)?.(),
    backoff: (attempt) => this.#backoff(attempt),
  };

  /**
   * Creates the client; nothing connects until it is used.
   *
   * @throws {ConfigError} For OAUTHBEARER without an `oauthBearer` token source.
   */
  constructor(options: KafkaLinkOptions) {
    this.brokers = options.brokers;
    this.#health = new Availability(
      this.brokers,
      () => this.#brokerCount,
      () => this.topicPartitions(),
      { ms: options.silenceMs || Infinity, drop: () => this.#dropConnections() },
    );
    this.#acks = options.acks ?? 1;
    this.#retryBackoffMs = options.retryBackoffMs ?? 200;
    this.#replicationFactor = options.replicationFactor ?? 3;
    this.#topics = options.topics ?? "on-demand";
    this.#base = {
      clientId: options.clientId,
      bootstrapBrokers: options.brokers,
      connectTimeout: options.connectionTimeoutMs ?? 3000,
      requestTimeout: options.requestTimeoutMs ?? 15000,
      // A missing topic is the mesh's to create, with the partitions it needs.
      autocreateTopics: false,
      retries: 5,
      retryDelay: (_c, _op, attempt) => this.#backoff(attempt),
      ...security(options),
    };
    this.#sends = new SendQueue((records) => this.#write(records), () => Promise.resolve());
  }

  // Waits between tries: from retry.backoff.ms, doubling, at most 2 s.
  #backoff(attempt: number): number {
    return Math.min(2000, this.#retryBackoffMs * 2 ** Math.max(0, attempt - 1));
  }

  #watch<T extends Client>(client: T): T {
    client.on("client:broker:failed", ({ broker }) => {
      this.#health.down("connection failed", `${broker.host}:${broker.port}`);
    });
    client.on("client:broker:connect", ({ connection }) => this.#connections.add(connection));
    client.on("client:broker:disconnect", ({ connection }) => this.#connections.delete(connection));
    return client;
  }

  // Kafka went silent: the connections waiting on it are ended, so that their requests fail now
  // (not at request.timeout.ms) and new connections are made once it answers again.
  #dropConnections(): void {
    for (const c of this.#connections) c.socket?.destroy();
    this.#connections.clear();
  }

  #admin_(): Admin {
    if (this.#closed) throw new Error("Kafka link is closed");
    return this.#admin ??= this.#watch(new Admin({ ...this.#base }));
  }

  /** False while the broker is unreachable (see {@link KafkaClient.available}). */
  get available(): boolean {
    return this.#health.available;
  }

  /** Topic name → partition count, for every topic in the cluster. */
  async topicPartitions(): Promise<Map<string, number>> {
    const admin = this.#admin_();
    let meta;
    try {
      const names = await admin.listTopics();
      meta = await admin.metadata({ topics: names, forceUpdate: true });
    } catch (e) {
      throw explained(e);
    }
    this.#brokerCount = meta.brokers.size;
    this.#health.up();
    return new Map([...meta.topics].map(([name, t]) => [name, t.partitionsCount]));
  }

  /** Grows an existing topic to `count` partitions; one that has as many already is left. */
  createPartitions(topic: string, count: number): Promise<void> {
    return growTopic(this.#topicAdmin(), topic, count);
  }

  /**
   * Makes sure `topic` exists, creating it with `partitions` partitions when missing, with
   * replication factor min(`kafka.replication.factor`, number of brokers). Returns its
   * partition count. With `kafka.topics=pre-allocated` a missing topic is an error.
   */
  ensureTopic(topic: string, partitions: number): Promise<number> {
    return ensureTopic(this.#topicAdmin(), topic, partitions);
  }

  #topicAdmin(): TopicAdmin {
    return {
      mode: this.#topics,
      replicationFactor: this.#replicationFactor,
      partitions: () => this.topicPartitions(),
      brokers: () => this.#brokerCount ?? 1, // known since partitions()
      // Errors with their causes in the message, except the one `exists` looks for.
      create: (topic, partitions, replicas) =>
        this.#admin_().createTopics({ topics: [topic], partitions, replicas }).then(
          () => {},
          (e) => {
            throw apiError(e, "TOPIC_ALREADY_EXISTS") ? e : explained(e);
          },
        ),
      grow: (topic, count) =>
        this.#admin_().createPartitions({ topics: [{ name: topic, count }] }).catch((e) => {
          throw explained(e);
        }),
      exists: (e) => apiError(e, "TOPIC_ALREADY_EXISTS"),
      // A cluster just started may not know all its brokers yet.
      retriable: () => true,
    };
  }

  /**
   * Writes records (explicit partitions), resolving when the broker has them (acks=1).
   * Records sent in the same turn of the event loop share produce requests. Order is kept.
   */
  send(records: OutRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Kafka link is closed"));
    return this.#sends.send(records);
  }

  async #write(records: OutRecord[]): Promise<void> {
    // Retried here, not by the library: with the metadata asked again before each try, and
    // only for what may succeed (see `retriable`).
    const producer = this.#producer ??= this.#watch(
      new Producer({ ...this.#base, retries: 0, idempotent: false }),
    );
    this.counters.produceRequests++;
    this.counters.recordsSent += records.length;
    const messages: ProduceRecord[] = records.map((r) => {
      const headers: Uint8Array[] = [];
      if (r.headers) {
        for (const k in r.headers) {
          headers.push(HEADER_NAMES.encode(k), HEADER_VALUES.encode(r.headers[k]));
        }
      }
      return {
        topic: r.topic,
        partition: r.partition,
        key: bytesOf(r.key ?? randomHex32()),
        value: typeof r.value === "string" ? Buffer.from(r.value) : r.value,
        headers,
      };
    });
    // Long enough to outlast a partition leader's election after its broker died (Kafka fences
    // a silent broker after broker.session.timeout.ms, 9 s by default), as the kafkajs client.
    const deadline = Date.now() + PRODUCE_RETRY_MS;
    for (let attempt = 1;; attempt++) {
      const answered = this.#health.waiting(0);
      try {
        // Written by our encoder unless acks=0 or the cluster speaks another produce version.
        const direct = this.#acks !== 0 &&
          await produceDirect(producer, messages, this.#acks as 1 | -1);
        if (!direct) await producer.send({ messages: messages.map(forLibrary), acks: this.#acks });
        break;
      } catch (e) {
        // Kafka unreachable: the sender hears it now, not after the retries.
        if (this.#closed || !retriable(e) || !this.available || Date.now() > deadline) {
          throw explained(e);
        }
        producer.clearMetadata(); // a new leader, a new partition: ask again
        await new Promise((r) => setTimeout(r, this.#backoff(attempt)));
      } finally {
        answered();
      }
    }
    this.#health.up();
  }

  /**
   * Reads exactly one partition from its latest offset, calling `onRecord` for each record in
   * order. A handler error is logged and the record skipped; it never stops the consumer.
   */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
  ): PartitionConsumer {
    const stop = new AbortController();
    const consumer = this.#watch(
      new Consumer({
        ...this.#base,
        // Never joins it: fetches name their partition and offset.
        groupId: `${this.#base.clientId}.${topic}.${partition}`,
        retries: 0,
      }),
    );
    const ready = Promise.withResolvers<void>();
    ready.promise.catch(() => {}); // a caller that never awaits `ready` must not see it fail
    const reader = new PartitionReader(
      this.#readerLink,
      consumer,
      topic,
      partition,
      onRecord,
      stop.signal,
    );
    const handle: PartitionConsumer = {
      topic,
      partition,
      ready: ready.promise,
      stop: async () => {
        if (stop.signal.aborted) return;
        stop.abort();
        this.#consumers.delete(handle);
        ready.reject(new ConsumerStopped(topic, partition));
        await consumer.close(true).catch(() => {});
      },
    };
    this.#consumers.add(handle);
    reader.run(ready.resolve).catch((e) => {
      if (stop.signal.aborted) return;
      ready.reject(e);
      log.error("Consumer of {topic}-{partition} failed: {message}", {
        topic,
        partition,
        message: (e as Error).message,
      });
    });
    return handle;
  }

  /**
   * Writes a loopback record to a partition this link consumes and waits until it is read
   * back: the health check of a monitor or an application.
   *
   * @returns The round trip in ms.
   * @throws {Error} When it does not come back within `timeoutMs` (or cannot be written).
   */
  loopback(topic: string, partition: number, timeoutMs = 5000): Promise<number> {
    return loopbackRoundTrip(
      (r) => this.send(r),
      this.#loopbacks,
      topic,
      partition,
      timeoutMs,
      this.#health.signal,
    );
  }

  /** Stops every consumer and disconnects. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#health.close();
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    await this.#producer?.close(true).catch(() => {});
    await this.#admin?.close().catch(() => {});
  }
}

/** What a {@link PartitionReader} reports to its link. */
interface ReaderLink {
  readonly counters: TrafficCounters;
  /** A fetch was answered. */
  answered(): void;
  /** A fetch leaves, to be answered within `expectMs`: call the result when it ends. */
  waiting(expectMs: number): () => void;
  /** A loopback record came back. */
  loopedBack(nonce: string): void;
  /** The wait before try `attempt`. */
  backoff(attempt: number): number;
}

/** The fetch loop of one partition. */
class PartitionReader {
  readonly #link: ReaderLink;
  readonly #consumer: Consumer;
  readonly #topic: string;
  readonly #partition: number;
  readonly #onRecord: (record: InRecord) => void | Promise<void>;
  readonly #signal: AbortSignal;
  /** The next offset to handle: a number (exact to 2^53), since every BigInt operation allocates. */
  #next = -1;
  /** The key of the last record handled (at `#next - 1`), to recognise the log after a break. */
  #lastKey: Uint8Array | null | undefined;
  #topicId = "";
  #topicIdBytes: Uint8Array = new Uint8Array(16);
  #leader = -1;
  /** Keys handled last: a record written twice by a retried produce is handled once. */
  readonly #recent = new RecentKeys(RECENT_KEYS);

  constructor(
    link: ReaderLink,
    consumer: Consumer,
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    signal: AbortSignal,
  ) {
    this.#link = link;
    this.#consumer = consumer;
    this.#topic = topic;
    this.#partition = partition;
    this.#onRecord = onRecord;
    this.#signal = signal;
  }

  // Where the partition's leader is, and the topic's id (a new id: the topic was replaced).
  async #locate(): Promise<boolean> {
    const meta = await this.#consumer.metadata({ topics: [this.#topic], forceUpdate: true });
    const t = meta.topics.get(this.#topic);
    const p = t?.partitions[this.#partition];
    if (t === undefined || p === undefined || p.leader < 0) {
      throw new Error(`${this.#topic}-${this.#partition} has no leader`);
    }
    const replaced = this.#topicId !== "" && this.#topicId !== t.id;
    if (t.id !== this.#topicId) this.#topicIdBytes = topicIdBytes(t.id);
    this.#topicId = t.id;
    this.#leader = p.leader;
    return replaced;
  }

  #replaced(why: string): void {
    log.warn("{topic}-{partition} was replaced ({why}): reading it from its start", {
      topic: this.#topic,
      partition: this.#partition,
      why,
    });
    this.#next = 0;
    this.#lastKey = undefined;
  }

  async run(ready: () => void): Promise<void> {
    const signal = this.#signal;
    // Start at the end; what is written from then on has a later offset.
    for (let attempt = 1; this.#next < 0; attempt++) {
      try {
        await this.#locate();
        const offsets = await this.#consumer.listOffsets({
          topics: [this.#topic],
          partitions: { [this.#topic]: [this.#partition] },
          timestamp: ListOffsetTimestamps.LATEST,
        });
        this.#next = Number(offsets.get(this.#topic)![this.#partition]);
      } catch (e) {
        if (signal.aborted) return;
        if (attempt >= 120) throw e;
        // (A broker that cannot be reached is reported by the client's event, with its address.)
        await sleep(this.#link.backoff(attempt), signal);
      }
      if (signal.aborted) return;
    }
    ready();
    let resync = false; // after a break: check that the log is the one read
    let attempt = 0;
    while (!signal.aborted) {
      let from = -1;
      let response: FetchedPartition;
      try {
        if (this.#leader < 0 && (await this.#locate())) {
          this.#replaced("it has a new topic id");
        }
        // After a break the last record handled is fetched again, to compare its key (the
        // offset is taken after `#locate`, which may have sent the reader back to the start).
        from = resync && this.#lastKey !== undefined ? this.#next - 1 : this.#next;
        response = await this.#fetch(from);
      } catch (e) {
        if (signal.aborted) return;
        attempt++;
        if (apiError(e, "OFFSET_OUT_OF_RANGE")) {
          // Past the log's end: it is shorter than what was read. Before its start: retention
          // removed records never read (the broker was away for long), which is said too.
          this.#replaced(`offset ${from} is out of its range`);
          resync = false;
          continue;
        }
        if (!isNetwork(e)) {
          log.debug("Fetch of {topic}-{partition} failed: {message}", {
            topic: this.#topic,
            partition: this.#partition,
            message: (e as Error).message,
          });
        }
        this.#leader = -1; // a leader change, a broker restart: ask again
        resync = true;
        await sleep(this.#link.backoff(attempt), signal);
        continue;
      }
      attempt = 0;
      this.#link.answered();
      if (signal.aborted) return;
      const records = response.batches;
      if (resync && this.#lastKey !== undefined) {
        const first = records[0];
        const back = first?.records.find((r) => first.firstOffset + r.offsetDelta === from);
        if (back === undefined) {
          // Nothing came back yet (the broker is still loading the log): ask again.
          if (first === undefined) continue;
          this.#replaced(`offset ${from} is gone`);
          resync = false;
          continue;
        }
        // A missing key compares as an empty one.
        if (!sameBytes(back.key ?? NO_KEY, this.#lastKey ?? NO_KEY)) {
          this.#replaced(`the record at offset ${from} has another key`);
          resync = false;
          continue;
        }
      }
      resync = false;
      await this.#handle(records);
      // The next fetch waits for the end of the turn: the sends its records' handlers made (the
      // replies, the next requests) are written first, since they are what the other side waits
      // for (~10 % more requests per second at 64 in flight).
      if (records.length) await new Promise((r) => setImmediate(r));
    }
  }

  // Our fetch (views of one buffer per response); the library's when the cluster does not speak
  // fetch v17.
  async #fetch(from: number): Promise<FetchedPartition> {
    const answered = this.#link.waiting(FETCH_WAIT_MS);
    try {
      return await this.#fetchOnce(from);
    } finally {
      answered();
    }
  }

  async #fetchOnce(from: number): Promise<FetchedPartition> {
    const ours = await fetchPartition(this.#consumer, {
      topic: this.#topic,
      topicId: this.#topicIdBytes,
      partition: this.#partition,
      leader: this.#leader,
      offset: from,
      maxWaitMs: FETCH_WAIT_MS,
      maxBytes: FETCH_BYTES,
    });
    if (ours !== undefined) return ours;
    const response = await this.#consumer.fetch({
      node: this.#leader,
      topics: [{
        topicId: this.#topicId,
        partitions: [{
          partition: this.#partition,
          fetchOffset: BigInt(from),
          partitionMaxBytes: FETCH_BYTES,
          currentLeaderEpoch: -1,
          lastFetchedEpoch: -1,
        }],
      }],
      maxWaitTime: FETCH_WAIT_MS,
      minBytes: 1,
      maxBytes: FETCH_BYTES,
    });
    return { batches: (response.responses[0]?.partitions[0]?.records ?? []).map(fromLibrary) };
  }

  async #handle(batches: FetchedBatch[]): Promise<void> {
    let count = 0;
    for (const batch of batches) {
      const first = batch.firstOffset;
      const last = first + batch.lastOffsetDelta;
      if (last < this.#next) continue;
      if ((batch.attributes & CONTROL_BATCH) === 0) {
        for (const record of batch.records) {
          const offset = first + record.offsetDelta;
          if (offset < this.#next) continue;
          count++;
          const done = this.#deliver(record, offset);
          if (done !== undefined) await done;
          this.#lastKey = record.key;
          this.#next = offset + 1;
          if (this.#signal.aborted) return;
        }
      }
      this.#next = last + 1;
    }
    if (count > 0) {
      this.#link.counters.batchesRead++;
      this.#link.counters.recordsRead += count;
      // A key of its own: the view would keep the whole response (up to 4 MiB) while idle.
      this.#lastKey = this.#lastKey?.slice() ?? this.#lastKey;
    }
  }

  #failed(offset: number, e: unknown): void {
    log.error("Record {offset} of {topic}-{partition} failed: {message}", {
      offset: String(offset),
      topic: this.#topic,
      partition: this.#partition,
      message: (e as Error).message,
    });
  }

  // Synchronous unless the handler returns a promise: a fetched batch's records are then handled
  // in one turn of the event loop, and the sends their handlers make share produce requests.
  #deliver(record: FetchedRecord, offset: number): Promise<void> | undefined {
    if (record.key !== null && record.key.length >= 16 && !this.#recent.add(record.key)) {
      log.debug("{topic}-{partition}: offset {offset} is a record written again; skipped", {
        topic: this.#topic,
        partition: this.#partition,
        offset: String(offset),
      });
      return;
    }
    const headers = record.headers;
    if (headers[INIT_HEADER] !== undefined) return; // another client's start token
    const loopback = headers[LOOPBACK_HEADER];
    if (loopback !== undefined) {
      this.#link.loopedBack(loopback);
      return;
    }
    try {
      const done = this.#onRecord(
        new Delivered(
          this.#topic,
          this.#partition,
          offset,
          record.key,
          headers,
          record.value ?? new Uint8Array(),
          record.timestamp,
        ),
      );
      if (done !== undefined) return done.catch((e) => this.#failed(offset, e));
    } catch (e) {
      this.#failed(offset, e);
    }
  }
}

// The connection's TLS and SASL options, from the client-neutral settings.
function security(o: KafkaLinkOptions): Pick<BaseOptions, "tls" | "sasl"> {
  const out: Pick<BaseOptions, "tls" | "sasl"> = {};
  const tls = o.tls;
  if (tls) {
    out.tls = {
      rejectUnauthorized: true,
      ...(tls.ca ? { ca: [tls.ca] } : {}),
      ...(tls.cert ? { cert: tls.cert, key: tls.key, passphrase: tls.passphrase } : {}),
      ...(tls.minVersion ? { minVersion: tls.minVersion } : {}),
      // An empty ssl.endpoint.identification.algorithm: the chain is checked, the name not.
      ...(tls.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
    };
  }
  const sasl = o.sasl;
  if (sasl?.mechanism === "oauthbearer") {
    const provider = o.oauthBearer;
    if (provider === undefined) {
      throw new ConfigError(
        "sasl.mechanism",
        "OAUTHBEARER",
        "a token source: pass oauthBearer in the options of connectToCloud or PresenceMonitor",
      );
    }
    out.sasl = { mechanism: "OAUTHBEARER", token: () => provider().then((t) => t.value) };
  } else if (sasl) {
    const mechanism = sasl.mechanism === "plain"
      ? "PLAIN"
      : sasl.mechanism === "scram-sha-256"
      ? "SCRAM-SHA-256"
      : "SCRAM-SHA-512";
    out.sasl = { mechanism, username: sasl.username, password: sasl.password };
  }
  return out;
}
