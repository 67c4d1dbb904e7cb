/**
 * The one place the library talks to Kafka (through kafkajs): topics, a pipelined producer,
 * and consumers that read exactly one partition from its latest offset.
 *
 * kafkajs has no manual partition assignment (`assign`), so a {@link PartitionConsumer} uses a
 * consumer group of its own (nobody else joins it, so no rebalance ever pauses anyone else)
 * with a partition assigner that hands its single member exactly the wanted partition. A new
 * consumer starts at the latest offset, and is ready once it has read back a token it wrote to
 * that partition itself, so nothing written after `ready` can be missed. It commits what it has
 * handled, so a rejoin resumes there, and skips what it has handled already: across a broker
 * restart every record is handled once.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { AssignerProtocol, Kafka, logLevel } from "kafkajs";
import type {
  Admin,
  Consumer,
  IHeaders,
  KafkaConfig,
  PartitionAssigner,
  Producer,
  SASLOptions,
} from "kafkajs";
import { logger } from "../bus/_log.ts";
import { randomHex32 } from "../bus/_ids.ts";
import { packageVersion, registerLibrary } from "../bus/libraries.ts";
import { INIT_HEADER, LOOPBACK_HEADER, loopbackRoundTrip } from "./client.ts";
import type {
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";
import { patchKafkajs } from "./_kafkajs_patch.ts";
import { SendQueue } from "./_send_queue.ts";
import { asBuffer } from "./_bytes.ts";
import { Availability } from "./_availability.ts";
import { ensureTopic, growTopic } from "./_topics.ts";
import type { TopicAdmin } from "./_topics.ts";
import type { KafkaClientConfig, OAuthBearerProvider, TopicMode } from "./properties.ts";
import { ConfigError } from "../bus/errors.ts";

const log = logger("kafka");
registerLibrary("kafkajs", packageVersion("kafkajs", import.meta.url));

/**
 * Options of a {@link KafkaLink}: the brokers, a client id, and optionally the rest of a
 * {@link KafkaClientConfig} (security, timeouts, acks, topic creation).
 */
export interface KafkaLinkOptions extends Partial<Omit<KafkaClientConfig, "brokers" | "clientId">> {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Client id prefix, shown in broker logs. */
  clientId: string;
  /** The token source when `sasl` is OAUTHBEARER: the application's hook. */
  oauthBearer?: OAuthBearerProvider;
}

/** Batches whose last record's key a consumer remembers (about 10 s of a busy partition). */
const SEEN_BATCHES = 4096;
// What kafkajs's connection logs when the broker cannot be reached (network/connection.js).
const CONNECTION_LOST = /^Connection (error|timeout)/;

// Named as kafkajs's own "metadata not loaded" error, so that kafkajs refreshes its metadata and
// retries (the partition may have been added since); after its retries the send fails with it.
function noSuchPartition(topic: string, partition: number, count: number): Error {
  const e = new Error(`Topic ${topic} has no partition ${partition} (${count} partitions)`);
  e.name = "KafkaJSMetadataNotLoaded";
  return e;
}

/** The reason a consumer's `ready` rejects when it was stopped first. */
class ConsumerStopped extends Error {
  constructor(topic: string, partition: number) {
    super(`Consumer of ${topic}-${partition} stopped`);
    this.name = "ConsumerStopped";
  }
}

function headersOf(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(",") : v.toString();
  }
  return out;
}

/**
 * Whether `messages` are the log that `seen` (offset → key of records handled before) was read
 * from: false when a record at a seen offset has another key, true when one has the same,
 * undefined when none of them was seen.
 */
export function sameLog(
  seen: ReadonlyMap<string, string>,
  messages: readonly { offset: string; key?: { toString(): string } | null }[],
): boolean | undefined {
  for (const m of messages) {
    const key = seen.get(m.offset);
    if (key !== undefined) return key === (m.key?.toString() ?? "");
  }
  return undefined;
}

// Hands the group's only member exactly one partition of one topic.
function singlePartition(topic: string, partition: number): PartitionAssigner {
  return () => ({
    name: "minimesh-single-partition",
    version: 1,
    protocol: ({ topics }) => ({
      name: "minimesh-single-partition",
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: 1,
        topics,
        userData: Buffer.alloc(0),
      }),
    }),
    assign: ({ members }) =>
      Promise.resolve(members.map((m, i) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: i === 0 ? { [topic]: [partition] } : {},
          userData: Buffer.alloc(0),
        }),
      }))),
  });
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
  #consumers = new Set<PartitionConsumer>();
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
      // Idempotence off and acks=1, as the reference; requests are pipelined, never awaited
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

  /** Topic name → partition count, for every topic in the cluster. */
  async topicPartitions(): Promise<Map<string, number>> {
    const admin = await this.#admin_();
    // How many brokers there are, once: behind a single bootstrap address there may be many.
    this.#brokerCount ??= (await admin.describeCluster()).brokers.length;
    const meta = await admin.fetchTopicMetadata();
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
    return ensureTopic(this.#topicAdmin(), topic, partitions);
  }

  #topicAdmin(): TopicAdmin {
    return {
      mode: this.#topics,
      replicationFactor: this.#replicationFactor,
      partitions: () => this.topicPartitions(),
      brokers: () => this.#brokerCount!, // known since partitions()
      create: async (topic, partitions, replicationFactor) => {
        await (await this.#admin_()).createTopics({
          waitForLeaders: true,
          topics: [{ topic, numPartitions: partitions, replicationFactor }],
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
   * order. A handler error is logged and the record skipped; it never stops the consumer.
   */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
  ): PartitionConsumer {
    const token = randomHex32();
    const groupId = `${this.#clientId}.${topic}.${partition}.${token.slice(0, 12)}`;
    let stopped = false;
    const consumer: Consumer = this.#kafka.consumer({
      groupId,
      // A missing topic is the mesh's to create, with the partitions it needs; the broker would
      // create it with its default count (one, usually).
      allowAutoTopicCreation: false,
      partitionAssigners: [singlePartition(topic, partition)],
      maxWaitTimeInMs: 100,
      // The broker's least (group.min.session.timeout.ms): a consumer that restarts after Kafka
      // was away joins as a new member, and its group waits for the old one to time out first.
      sessionTimeout: 6_000,
      heartbeatInterval: 1_000,
      // kafkajs restarts a crashed consumer when this says so; a stop that interrupted its
      // start also crashes it, and that one must stay stopped.
      retry: {
        retries: 10,
        initialRetryTime: 200,
        maxRetryTime: 2000,
        restartOnFailure: () => Promise.resolve(!stopped),
      },
    });
    let resolveReady!: () => void;
    let rejectReady!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {}); // a caller that never awaits `ready` must not see an unhandled error
    let isReady = false;
    let next = -1n; // the next offset to handle
    let committed = -1n; // the last offset the broker confirmed committing for this group
    let replaced = 0; // how many times the log was found replaced (a commit of before is void)
    let committedAt = 0;
    // The key of the last record of each recent batch, by offset: to tell a rewind from a
    // replaced log (see below). Insertion-ordered, oldest dropped first.
    const seen = new Map<string, string>();
    // A stop while starting disconnects whatever step is in progress, but kafkajs would carry on
    // with the next one (subscribe, run) and join the group after all: each step checks first.
    const unlessStopped = () => {
      if (stopped) throw new ConsumerStopped(topic, partition);
    };
    const start = async () => {
      await this.#patched;
      unlessStopped();
      await consumer.connect();
      unlessStopped();
      await consumer.subscribe({ topic, fromBeginning: false });
      unlessStopped();
      await consumer.run({
        // Committed below, by hand: kafkajs's auto-commit awaits a commit after every batch,
        // which would add a round trip to every request.
        autoCommit: false,
        // Whole fetched batches are handled in one go, so the sends their handlers make are
        // coalesced into one produce request (see `send`).
        eachBatch: async ({ batch }) => {
          const messages = batch.messages;
          if (batch.partition !== partition || messages.length === 0) return;
          this.counters.batchesRead++;
          this.counters.recordsRead += messages.length;
          const firstOffset = BigInt(messages[0].offset);
          // A batch that starts before what was handled is either a rewind (a rejoin resumes
          // at the last commit, which a broker failover can set back) or a replaced log (the
          // topic was deleted and created again, or the broker lost everything: re-formatted).
          // The keys tell them apart (each record has a random one): the key at an offset
          // handled before is the same in the same log. Without such evidence, it is a replaced
          // log when the batch starts before the broker-confirmed commit, or when the log ends
          // before what was handled while nothing was committed yet (after a kill -9 a broker
          // first reports a high watermark from a checkpoint a few seconds old, which CI saw
          // make 188 events handled twice).
          if (next >= 0n && firstOffset < next) {
            const same = sameLog(seen, messages);
            const shorter = committed < 0n && BigInt(batch.highWatermark) < next;
            if (same === false || (same === undefined && (shorter || firstOffset < committed))) {
              log.warn(
                "{topic}-{partition} was replaced (offset {next} handled, log ends at " +
                  "{end}): reading it from its start",
                {
                  topic,
                  partition,
                  next: String(next),
                  end: batch.highWatermark,
                },
              );
              next = committed = -1n;
              seen.clear();
              replaced++;
              if (firstOffset > 0n) {
                consumer.seek({ topic, partition, offset: "0" });
                return;
              }
            }
          }
          // After a rejoin the broker may hand back records handled already: a prefix of the
          // batch. Offsets are parsed per batch, not per record.
          let first = 0;
          if (firstOffset < next) {
            while (first < messages.length && BigInt(messages[first].offset) < next) first++;
          }
          for (let i = first; i < messages.length; i++) {
            const message = messages[i];
            const headers = headersOf(message.headers);
            const init = headers[INIT_HEADER];
            if (init !== undefined) {
              if (init === token && !isReady) {
                isReady = true;
                resolveReady();
              }
              continue;
            }
            const loopback = headers[LOOPBACK_HEADER];
            if (loopback !== undefined) {
              this.#loopbacks.get(loopback)?.();
              continue;
            }
            try {
              const done = onRecord({
                topic,
                partition,
                offset: message.offset,
                key: message.key?.toString(),
                headers,
                value: message.value ?? new Uint8Array(),
                timestamp: Number(message.timestamp),
              });
              if (done !== undefined) await done;
            } catch (e) {
              log.error("Record {offset} of {topic}-{partition} failed: {message}", {
                offset: message.offset,
                topic,
                partition,
                message: (e as Error).message,
              });
            }
          }
          const last = messages[messages.length - 1];
          next = BigInt(last.offset) + 1n;
          seen.set(last.offset, last.key?.toString() ?? "");
          if (seen.size > SEEN_BATCHES) seen.delete(seen.keys().next().value!);
          // What it has handled is committed, at most once a second and without waiting, so
          // that a rejoin (after the broker restarted, say) resumes there instead of at the end;
          // what it then reads again it has handled already and skips (`next`).
          const now = Date.now();
          if (now - committedAt >= 1000) {
            committedAt = now;
            const offset = next;
            const epoch = replaced;
            consumer.commitOffsets([{ topic, partition, offset: String(offset) }]).then(() => {
              if (epoch === replaced && offset > committed) committed = offset;
            }, (e) =>
              log.debug("Commit on {topic}-{partition} failed: {message}", {
                topic,
                partition,
                message: (e as Error).message,
              }));
          }
        },
      });
      unlessStopped();
      // Write our token until it comes back: from then on nothing written can be missed.
      const deadline = Date.now() + 60_000;
      while (!isReady && !stopped) {
        if (Date.now() > deadline) {
          throw new Error(`Consumer of ${topic}-${partition} did not become ready in 60 s`);
        }
        await this.send([{ topic, partition, headers: { [INIT_HEADER]: token }, value: "init" }]);
        await Promise.race([ready, new Promise((r) => setTimeout(r, 250))]);
      }
    };
    const handle: PartitionConsumer = {
      topic,
      partition,
      ready,
      stop: async () => {
        stopped = true;
        this.#consumers.delete(handle);
        rejectReady(new ConsumerStopped(topic, partition));
        // Its committed offsets stay until the broker expires them (`offsets.retention.minutes`
        // after the group empties, 7 days by default); deleting them would need the broker
        // when stopping, which may be when it is gone.
        await consumer.disconnect().catch(() => {});
      },
    };
    // Not noted as requests on their way (for a silent broker): kafkajs reports no failed fetch,
    // so one would wait forever, and Kafka would count as silent again and again.
    consumer.on(consumer.events.FETCH, () => this.#health.up());
    this.#consumers.add(handle);
    start().catch((e) => {
      if (stopped) {
        // It may have connected or joined after the stop's disconnect.
        void consumer.disconnect().catch(() => {});
        return;
      }
      rejectReady(e);
      log.error("Consumer of {topic}-{partition} failed to start: {message}", {
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
    await this.#producer?.disconnect().catch(() => {});
    const admin = await this.#admin?.catch(() => undefined);
    await admin?.disconnect().catch(() => {});
  }
}

// The connection's TLS and SASL options for kafkajs, from the client-neutral settings.
function security(o: KafkaLinkOptions): Pick<KafkaConfig, "ssl" | "sasl"> {
  const out: Pick<KafkaConfig, "ssl" | "sasl"> = {};
  const tls = o.tls;
  if (tls) {
    out.ssl = {
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
    if (o.oauthBearer === undefined) {
      throw new ConfigError(
        "sasl.mechanism",
        "OAUTHBEARER",
        "a token source: pass oauthBearer in the options of connectToCloud or PresenceMonitor",
      );
    }
    out.sasl = { mechanism: "oauthbearer", oauthBearerProvider: o.oauthBearer } as SASLOptions;
  } else if (sasl) {
    out.sasl = sasl as SASLOptions;
  }
  return out;
}
