/**
 * A {@link KafkaClient} over kafkajs (`kafka.client=kafkajs`; the default is
 * `@platformatic/kafka`, see ../platformatic/): topics, a pipelined producer, and readers of
 * exactly one partition from its latest offset (reader.ts), each through a consumer group of
 * its own.
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import type { Admin, KafkaConfig, Producer, SASLOptions } from "kafkajs";
import { logger } from "../../bus/_log.ts";
import { randomHex32 } from "../../bus/_ids.ts";
import { packageVersion, registerLibrary } from "../../bus/libraries.ts";
import { loopbackRoundTrip } from "../client.ts";
import type {
  ConsumeOptions,
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "../client.ts";
import type { KafkaLinkOptions } from "../client.ts";
import { patchKafkajs } from "./_patch.ts";
import { disconnectWithin, GroupReader } from "./reader.ts";
import type { GroupReaderLink } from "./reader.ts";
import { SendQueue } from "../_send_queue.ts";
import { asBuffer } from "../_bytes.ts";
import { Availability } from "../_availability.ts";
import { growTopic, TopicCreations } from "../_topics.ts";
import type { TopicAdmin } from "../_topics.ts";
import type { TopicMode } from "../properties.ts";
import { tlsOptions, tokenSource } from "../_security.ts";

const log = logger("kafka");
registerLibrary("kafkajs", packageVersion("kafkajs", import.meta.url));

// What kafkajs's connection logs when the broker cannot be reached (network/connection.js).
const CONNECTION_LOST = /^Connection (error|timeout)/;

// Named as kafkajs's own "metadata not loaded" error, so that kafkajs refreshes its metadata and
// retries (the partition may have been added since); after its retries the send fails with it.
function noSuchPartition(topic: string, partition: number, count: number): Error {
  const e = new Error(`Topic ${topic} has no partition ${partition} (${count} partitions)`);
  e.name = "KafkaJSMetadataNotLoaded";
  return e;
}

/**
 * A connection to a Kafka cluster.
 *
 * @example
 * ```ts
 * import { KafkaLink } from "./link.ts";
 * // Needs a broker, so it is a function here: the doc test type-checks it without calling it.
 * export async function hello(): Promise<void> {
 *   const link = new KafkaLink({ brokers: ["127.0.0.1:9092"], clientId: "demo" });
 *   await link.ensureTopic("demo.topic", 2);
 *   const c = link.consumePartition("demo.topic", 1, (r) => console.log(r.value));
 *   await c.ready;
 *   await link.send([{ topic: "demo.topic", partition: 1, value: "hi" }]);
 *   await link.close();
 * }
 * ```
 */
export class KafkaLink implements KafkaClient {
  /** The bootstrap brokers. */
  readonly brokers: string[];
  /** Traffic counters: produce requests and records sent, fetched batches and records read. */
  readonly counters: TrafficCounters = {
    produceRequests: 0,
    recordsSent: 0,
    batchesRead: 0,
    recordsRead: 0,
  };
  readonly #kafka: Kafka;
  readonly #clientId: string;
  readonly #acks: -1 | 0 | 1;
  readonly #retryBackoffMs: number;
  readonly #replicationFactor: number;
  readonly #topics: TopicMode;
  #brokerCount: number | undefined;
  readonly #patched: Promise<string>;
  #producer: Producer | undefined;
  #producerReady: Promise<Producer> | undefined;
  #admin: Promise<Admin> | undefined;
  #creations: TopicCreations | undefined;
  #consumers = new Set<PartitionConsumer>();
  readonly #readerLink: GroupReaderLink;
  readonly #sends = new SendQueue(
    (records) => this.#sendBatch(this.#producer!, records),
    () => this.#producer_(),
  );
  #loopbacks = new Map<string, () => void>();
  #closed = false;
  readonly #health: Availability;

  /**
   * Creates the client; nothing connects until it is used.
   *
   * @throws {ConfigError} For OAUTHBEARER without an `oauthBearer` token source.
   */
  constructor(options: KafkaLinkOptions) {
    this.brokers = options.brokers;
    // kafkajs keeps its connections to itself (ending its sockets under it left consumers and
    // `close()` hanging after a silence, measured): a silent broker makes new sends fail at
    // once, while what is on its way waits for kafkajs's own request timeout.
    this.#health = new Availability(
      this.brokers,
      () => this.#brokerCount,
      () => this.topicPartitions(),
      { ms: options.silenceMs || Infinity, drop: () => {} },
    );
    this.#clientId = options.clientId;
    this.#acks = options.acks ?? 1;
    this.#retryBackoffMs = options.retryBackoffMs ?? 200;
    this.#replicationFactor = options.replicationFactor ?? 3;
    this.#topics = options.topics ?? "on-demand";
    this.#patched = patchKafkajs(); // before the first connection opens
    this.#readerLink = {
      counters: this.counters,
      clientId: options.clientId,
      patched: this.#patched,
      send: (records) => this.send(records),
      loopedBack: (nonce) => this.#loopbacks.get(nonce)?.(),
      heard: () => this.#health.up(),
      stopped: (reader) => this.#consumers.delete(reader),
      // An admin of its own: kafkajs keeps asking for the metadata of every topic an admin
      // looked up, and fails each later call of it while that topic is missing (a re-formatted
      // broker), which would stop the link's admin from re-creating the topics.
      offsetAt: async (topic, partition, since) => {
        await this.#patched;
        const admin = this.#kafka.admin();
        await admin.connect();
        try {
          const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, since);
          return offsets.find((o) => o.partition === partition)?.offset;
        } finally {
          await admin.disconnect().catch(() => {});
        }
      },
    };
    this.#kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ...security(options),
      // kafkajs reports retriable conditions (leader moves, a topic being created) as errors;
      // real failures reach our callers as rejections, so its own lines go to debug.
      logLevel: logLevel.ERROR,
      logCreator: () => ({ namespace, level, log: entry }) => {
        // A refused, dropped or timed-out connection shows here first, within milliseconds
        // (error responses of a healthy broker, "Response ...", are logged here too: not those).
        if (
          level === logLevel.ERROR && namespace === "Connection" &&
          CONNECTION_LOST.test(entry.message)
        ) this.#health.down(entry.message, (entry as { broker?: string }).broker);
        log.debug("kafkajs {namespace}: {message}", { namespace, message: entry.message });
      },
      connectionTimeout: options.connectionTimeoutMs ?? 3000,
      requestTimeout: options.requestTimeoutMs ?? 15000,
      retry: { retries: 5, initialRetryTime: this.#retryBackoffMs },
    });
  }

  #admin_(): Promise<Admin> {
    if (this.#admin === undefined) {
      const admin = this.#kafka.admin();
      this.#admin = this.#patched.then(() => admin.connect()).then(() => admin).catch((e) => {
        this.#admin = undefined;
        throw e;
      });
    }
    return this.#admin;
  }

  #producer_(): Promise<Producer> {
    if (this.#producerReady === undefined) {
      // Idempotence off and acks=1, as the Java original; requests are pipelined, never awaited
      // one record at a time by the library.
      const producer = this.#kafka.producer({
        allowAutoTopicCreation: false,
        // Long enough to outlast a partition leader's election after its broker died (Kafka
        // fences a silent broker after broker.session.timeout.ms, 9 s by default; CI saw 16 s
        // under load), short waits between tries so that the new leader is used soon after:
        // about 35 s in all (the Java client's delivery.timeout.ms is 120 s). When the whole
        // cluster is gone, new sends fail at once instead (`available`).
        retry: { retries: 20, initialRetryTime: this.#retryBackoffMs, maxRetryTime: 2000 },
        // Every record names its partition. kafkajs's default partitioner would filter the
        // topic's partition list for each record before returning that number. A partition that
        // is not in the metadata must fail the send: kafkajs would drop its records and resolve.
        createPartitioner: () => ({ topic, partitionMetadata, message }) => {
          const partition = message.partition!;
          if (partition < partitionMetadata.length) return partition;
          throw noSuchPartition(topic, partition, partitionMetadata.length);
        },
      });
      this.#producerReady = this.#patched.then(() => producer.connect()).then(() => {
        this.#producer = producer;
        return producer;
      }).catch((e) => {
        this.#producerReady = undefined;
        throw e;
      });
    }
    return this.#producerReady;
  }

  /** False while the broker is unreachable (see {@link KafkaClient.available}). */
  get available(): boolean {
    return this.#health.available;
  }

  /** See {@link KafkaClient.onAvailability}. */
  onAvailability(listener: () => void): () => void {
    return this.#health.onChange(listener);
  }

  /** See {@link KafkaClient.topicPartitions}. */
  async topicPartitions(only?: readonly string[]): Promise<Map<string, number>> {
    const admin = await this.#admin_();
    // How many brokers there are, once: behind a single bootstrap address there may be many.
    this.#brokerCount ??= (await admin.describeCluster()).brokers.length;
    // Only those asked for while they all exist (a missing one fails the request): see the
    // platformatic link.
    const some = only !== undefined && only.length > 0
      ? await admin.fetchTopicMetadata({ topics: [...only] }).catch(() => undefined)
      : undefined;
    const meta = some ?? await admin.fetchTopicMetadata();
    this.#health.up();
    return new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  }

  /** Grows an existing topic to `count` partitions; one that has as many already is left. */
  createPartitions(topic: string, count: number): Promise<void> {
    return growTopic(this.#topicAdmin(), topic, count);
  }

  /**
   * Makes sure `topic` exists, creating it with `partitions` partitions when missing, with
   * replication factor min(`kafka.replication.factor`, number of brokers). Returns its
   * partition count (which may be more, or fewer, than asked when it existed). With
   * `kafka.topics=pre-allocated` a missing topic is an error: nothing is created.
   */
  ensureTopic(topic: string, partitions: number): Promise<number> {
    this.#creations ??= new TopicCreations(this.#topicAdmin());
    return this.#creations.ensure(topic, partitions);
  }

  #topicAdmin(): TopicAdmin {
    return {
      mode: this.#topics,
      replicationFactor: this.#replicationFactor,
      partitions: () => this.topicPartitions(),
      brokers: () => this.#brokerCount!, // known since partitions()
      create: async (topics, partitions, replicationFactor) => {
        await (await this.#admin_()).createTopics({
          waitForLeaders: true,
          topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
        });
      },
      grow: async (topic, count) => {
        await (await this.#admin_()).createPartitions({ topicPartitions: [{ topic, count }] });
      },
      exists: (e) => /already exists/i.test((e as Error).message),
      // A broker that has not heard of the new topic yet answers the wait for its leaders with
      // "does not host this topic-partition" (retriable).
      retriable: (e) => (e as { retriable?: boolean }).retriable === true,
    };
  }

  /**
   * Writes records (explicit partitions), resolving when the broker has them (acks=1).
   * Records sent in the same turn of the event loop share produce requests (pipelining many
   * small events); a request carries at most 512 KiB, because the broker refuses a batch over
   * its `message.max.bytes` (1 MiB by default). Order is kept.
   */
  send(records: OutRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Kafka link is closed"));
    return this.#sends.send(records);
  }

  async #sendBatch(producer: Producer, records: OutRecord[]): Promise<void> {
    this.counters.produceRequests++;
    this.counters.recordsSent += records.length;
    const byTopic = new Map<string, OutRecord[]>();
    for (const r of records) {
      const list = byTopic.get(r.topic);
      if (list) list.push(r);
      else byTopic.set(r.topic, [r]);
    }
    const answered = this.#health.waiting(0);
    await producer.sendBatch({
      acks: this.#acks,
      topicMessages: [...byTopic].map(([topic, list]) => ({
        topic,
        messages: list.map((r) => ({
          partition: r.partition,
          key: r.key ?? randomHex32(),
          headers: r.headers,
          value: typeof r.value === "string" ? r.value : asBuffer(r.value),
        })),
      })),
    }).finally(answered);
    this.#health.up();
  }

  /**
   * Reads exactly one partition from its latest offset, calling `onRecord` for each record in
   * order (see reader.ts). A handler error is logged and the record skipped; it never stops the
   * consumer.
   */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    options: ConsumeOptions = {},
  ): PartitionConsumer {
    const reader = new GroupReader(this.#kafka, this.#readerLink, topic, partition, onRecord);
    reader.since = options.since;
    this.#consumers.add(reader);
    reader.start();
    return reader;
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
    const producer = this.#producer;
    if (producer) await disconnectWithin("The producer", () => producer.disconnect());
    const admin = this.#admin;
    if (admin) await disconnectWithin("The admin client", async () => (await admin).disconnect());
  }
}

// The connection's TLS and SASL options for kafkajs, from the client-neutral settings.
function security(o: KafkaLinkOptions): Pick<KafkaConfig, "ssl" | "sasl"> {
  const out: Pick<KafkaConfig, "ssl" | "sasl"> = {};
  if (o.tls) out.ssl = tlsOptions(o.tls);
  const sasl = o.sasl;
  if (sasl?.mechanism === "oauthbearer") {
    out.sasl = {
      mechanism: "oauthbearer",
      oauthBearerProvider: tokenSource(o.oauthBearer),
    } as SASLOptions;
  } else if (sasl) {
    out.sasl = sasl as SASLOptions;
  }
  return out;
}
