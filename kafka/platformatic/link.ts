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
import { Admin, Consumer, kGetBootstrapConnection, Producer } from "@platformatic/kafka";
import type { BaseOptions, Connection, MessageToProduce } from "@platformatic/kafka";
import { logger } from "../../bus/_log.ts";
import { randomHex32 } from "../../bus/_ids.ts";
import { tlsOptions, tokenSource } from "../_security.ts";
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
import { ConsumerStopped } from "../client.ts";
import type { KafkaLinkOptions } from "../client.ts";
import { SendQueue } from "../_send_queue.ts";
import type { Written } from "../_send_queue.ts";
import { PRODUCE_TIMEOUT_MS, produceDirect } from "../wire/mod.ts";
import type { ConnectionProgress, ProduceRecord } from "../wire/mod.ts";
import { asBuffer, bytesOf, HEADER_NAMES, HeaderValues } from "../_bytes.ts";
import { PartitionReader } from "./reader.ts";
import type { ReaderLink } from "./reader.ts";
import { apiError, explained, LeaderAway, retriable } from "./_errors.ts";
import { Availability, LEADER_AWAY_WAIT_MS, leaderAnswers } from "../_availability.ts";
import { growTopic, TopicCreations } from "../_topics.ts";
import { writeAll } from "../_tries.ts";
import type { TopicAdmin } from "../_topics.ts";
import type { TopicMode } from "../properties.ts";

const log = logger("kafka");
registerLibrary("@platformatic/kafka", packageVersion("@platformatic/kafka", import.meta.url));

/**
 * Within how long of `since` a produce sent then on connections `on` is answered by brokers that
 * work: a timeout after each connection last answered (see {@link ConnectionProgress}).
 */
function produceBound(on: readonly ConnectionProgress[], since: number): number {
  if (on.length === 0) return PRODUCE_TIMEOUT_MS;
  let last = Infinity;
  for (const c of on) last = Math.min(last, c.progressAt);
  return Math.max(1, last - since + PRODUCE_TIMEOUT_MS);
}

/** How long a produce is tried again while its partition has no reachable leader. */
const PRODUCE_RETRY_MS = 35_000;
type Client = Admin | Producer | Consumer;

const HEADER_VALUES = new HeaderValues();

// A record as the library's encoder takes it: Buffers, and its headers in a Map.
function forLibrary(r: ProduceRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const headers = new Map<Buffer, Buffer>();
  for (let i = 0; i < r.headers.length; i += 2) {
    headers.set(asBuffer(r.headers[i]), asBuffer(r.headers[i + 1]));
  }
  return { ...r, key: asBuffer(r.key), value: asBuffer(r.value), headers };
}

/**
 * A connection to a Kafka cluster over `@platformatic/kafka`: a producer, an admin client and
 * one fetch loop per partition consumed, each on connections of its own (a fetch waiting at the
 * broker never holds a produce request back).
 *
 * @example
 * ```ts
 * import { PlatformaticLink } from "./link.ts";
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
  /** What a long poll's watch is told: the request timeout every request of the library has. */
  readonly #longPoll: { timeoutMs: number };
  readonly #acks: -1 | 0 | 1;
  readonly #retryBackoffMs: number;
  readonly #replicationFactor: number;
  readonly #topics: TopicMode;
  #brokerCount: number | undefined;
  #producer: Producer | undefined;
  #admin: Admin | undefined;
  #creations: TopicCreations | undefined;
  #consumers = new Set<PartitionConsumer>();
  /** Every open broker connection of this link's clients. */
  #connections = new Set<Connection>();
  #loopbacks = new Map<string, () => void>();
  readonly #sends: SendQueue;
  #closed = false;
  readonly #health: Availability;
  /** What the partition readers report to the link. */
  readonly #libraryWire: boolean;
  /** Connections that reached the SASL handshake (a failure after it is a refusal). */
  readonly #handshook = new WeakSet<Connection>();
  #refusalSaid = false;
  readonly #readerLink: ReaderLink = {
    counters: this.counters,
    libraryWire: false,
    answered: () => this.#health.up(),
    // A long poll (a quiet member's) is watched by its own request timeout (see
    // `WaitingOptions.timeoutMs`): a busy one's by the silence, 1 s after its wait.
    waiting: (expectMs) =>
      this.#health.waiting(
        expectMs,
        2 * expectMs >= this.#longPoll.timeoutMs ? this.#longPoll : {},
      ),
    loopedBack: (nonce) => this.#loopbacks.get(nonce)?.(),
    backoff: (attempt) => this.#backoff(attempt),
    leaderAnswers: (leader) => this.#leaderAnswers(leader),
  };

  /**
   * Creates the client; nothing connects until it is used.
   *
   * @throws {ConfigError} For OAUTHBEARER without an `oauthBearer` token source.
   */
  constructor(options: KafkaLinkOptions) {
    this.brokers = options.brokers;
    this.#libraryWire = this.#readerLink.libraryWire = options.libraryWire === true;
    this.#health = new Availability(
      this.brokers,
      () => this.#brokerCount,
      () => this.topicPartitions(),
      {
        ms: options.silenceMs || Infinity,
        drop: () => this.#dropConnections(),
        dropBroker: (broker) => this.#dropConnections(broker),
      },
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
      // Refused credentials stay refused: the library tries again anyway (its error chain hides
      // that the cause cannot be retried), so its tries go at once and the caller hears in
      // about a second instead of after the whole back-off.
      retryDelay: (_c, _op, attempt, _retries, error) =>
        refusedCredentials(error) ? 0 : this.#backoff(attempt),
      ...security(options),
    };
    this.#longPoll = { timeoutMs: this.#base.requestTimeout! };
    this.#sends = new SendQueue(
      (records, written) => this.#write(records, written),
      () => Promise.resolve(),
    );
  }

  // Waits between tries: from retry.backoff.ms, doubling, at most 2 s.
  #backoff(attempt: number): number {
    return Math.min(2000, this.#retryBackoffMs * 2 ** Math.max(0, attempt - 1));
  }

  #watch<T extends Client>(client: T): T {
    client.on("client:broker:sasl:handshake", ({ connection }) => this.#handshook.add(connection));
    client.on("client:broker:failed", ({ broker, connection }) => {
      const at = `${broker.host}:${broker.port}`;
      // A connection that got as far as SASL reached Kafka: its credentials were refused.
      if (this.#handshook.has(connection)) {
        if (!this.#refusalSaid) {
          this.#refusalSaid = true;
          log.warn(
            "Kafka at {at} refused this client's credentials: check sasl.jaas.config and " +
              "sasl.mechanism",
            { at },
          );
        }
        return;
      }
      this.#health.down("connection failed", at);
    });
    client.on("client:broker:connect", ({ broker, connection }) => {
      this.#connections.add(connection);
      this.#health.reached(`${broker.host}:${broker.port}`);
    });
    // The library asks its bootstrap brokers for metadata in their order, and one whose host is
    // gone holds each ask for the whole connection timeout: the first that did not fail lately
    // is asked first (its turn taken by the library's own rotation, which starts at `attempt`).
    const ask = client[kGetBootstrapConnection].bind(client);
    client[kGetBootstrapConnection] = (callback, attempt = 0) => {
      const first = attempt === 0 ? this.brokers.findIndex((b) => !this.#health.failing(b)) : 0;
      ask(callback, first > 0 ? first : attempt);
    };
    client.on("client:broker:disconnect", ({ connection }) => this.#connections.delete(connection));
    return client;
  }

  // Kafka (or `broker`, `host:port`) went silent: the connections waiting on it are ended, so
  // that their requests fail now (not at request.timeout.ms) and new connections are made once
  // it answers again.
  #dropConnections(broker?: string): void {
    for (const c of this.#connections) {
      if (broker !== undefined && `${c.host}:${c.port}` !== broker) continue;
      c.socket?.destroy();
      this.#connections.delete(c);
    }
  }

  // A leader that takes no TCP connection within a second counts as failing (see `leaderAnswers`).
  async #leaderAnswers(leader: { host: string; port: number }): Promise<boolean> {
    const at = `${leader.host}:${leader.port}`;
    if (await leaderAnswers(leader)) return true;
    this.#health.down("no connection within a second", at);
    return false;
  }

  #admin_(): Admin {
    if (this.#closed) throw new Error("Kafka link is closed");
    return this.#admin ??= this.#watch(new Admin({ ...this.#base }));
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
    const admin = this.#admin_();
    let meta;
    try {
      // Only those asked for, while they all exist: a cluster may hold thousands of topics, and
      // a monitor looks at the mesh's every second (listing 170 topics took it 11-19 ms). A
      // missing one fails the request (nothing is created): then every topic is listed.
      if (only !== undefined && only.length > 0) {
        meta = await admin.metadata({ topics: [...only], forceUpdate: true }).catch(() => {});
      }
      if (meta === undefined) {
        const names = await admin.listTopics();
        meta = await admin.metadata({ topics: names, forceUpdate: true });
      }
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
    this.#creations ??= new TopicCreations(this.#topicAdmin());
    return this.#creations.ensure(topic, partitions);
  }

  #topicAdmin(): TopicAdmin {
    return {
      mode: this.#topics,
      replicationFactor: this.#replicationFactor,
      partitions: () => this.topicPartitions(),
      brokers: () => this.#brokerCount ?? 1, // known since partitions()
      // Errors with their causes in the message, except the one `exists` looks for.
      create: (topics, partitions, replicas) =>
        this.#admin_().createTopics({ topics, partitions, replicas }).then(
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

  #producer_(): Producer {
    return this.#producer ??= this.#watch(
      new Producer({ ...this.#base, retries: 0, idempotent: false }),
    );
  }

  /** See {@link KafkaClient.prepareSend}. */
  async prepareSend(topic: string, partition: number): Promise<void> {
    if (this.#closed) return;
    try {
      const producer = this.#producer_();
      const meta = await producer.metadata({ topics: [topic] });
      const leader = meta.topics.get(topic)?.partitions[partition]?.leader;
      if (leader !== undefined && leader >= 0) await producer.connectToBrokers([leader]);
    } catch {
      // The send that follows tries again and says what failed.
    }
  }

  async #write(records: OutRecord[], written: Written): Promise<void> {
    // Retried here, not by the library: with the metadata asked again before each try, and
    // only for what may succeed (see `retriable`), and only what is not written yet (a request
    // goes as one per partition leader, and some may have answered).
    const producer = this.#producer_();
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
    try {
      await writeAll<ProduceRecord>(messages, {
        send: (list, attempt, has, failed) => this.#produce(producer, list, attempt, has, failed),
        // Kafka unreachable: the sender hears it now, not after the retries.
        mayRetry: (e) => !this.#closed && retriable(e) && this.available && Date.now() <= deadline,
        pause: (e, attempt) => {
          producer.clearMetadata(); // a new leader, a new partition: ask again
          // (The leaders' check took its time already: the cluster is asked again soon.)
          const wait = e instanceof LeaderAway ? LEADER_AWAY_WAIT_MS : this.#backoff(attempt);
          return new Promise((r) => setTimeout(r, wait));
        },
        written,
      });
    } catch (e) {
      throw explained(e);
    }
    this.#health.up();
  }

  // One try of `messages` (see `Tries.send` in kafka/_tries.ts).
  async #produce(
    producer: Producer,
    messages: ProduceRecord[],
    attempt: number,
    written: (list: ProduceRecord[]) => void,
    failed: (list: ProduceRecord[], error: Error) => boolean,
  ): Promise<void> {
    // A produce behind others on its connection is answered after them, each of which may take
    // the whole timeout while the cluster waits for replicas: a connection that works answers
    // one each timeout, however many wait on it.
    const since = Date.now();
    const on: ConnectionProgress[] = [];
    const answered = this.#health.waiting(0, {
      boundMs: () => produceBound(on, since),
      brokers: () => on.map((c) => c.broker),
    });
    const sentOn = (c: ConnectionProgress) => void on.push(c);
    try {
      if (attempt > 1) await this.#leadersAnswer(producer, messages);
      // Written by our encoder unless acks=0 or the cluster speaks another produce version.
      const direct = this.#acks !== 0 && !this.#libraryWire &&
        await produceDirect(producer, messages, this.#acks as 1 | -1, sentOn, written, failed);
      if (!direct) await producer.send({ messages: messages.map(forLibrary), acks: this.#acks });
    } finally {
      answered();
    }
  }

  /**
   * Before a produce is tried again: the leaders of its partitions take connections, or it is
   * not tried now (see `leaderAnswers`).
   *
   * @throws {LeaderAway} Naming the first that took none.
   */
  async #leadersAnswer(producer: Producer, messages: ProduceRecord[]): Promise<void> {
    const topics = [...new Set(messages.map((m) => m.topic))];
    const meta = await producer.metadata({ topics });
    const leaders = new Set<number>();
    for (const m of messages) {
      const leader = meta.topics.get(m.topic)?.partitions[m.partition ?? 0]?.leader;
      if (leader !== undefined && leader >= 0) leaders.add(leader);
    }
    await Promise.all([...leaders].map(async (id) => {
      const at = meta.brokers.get(id);
      if (at !== undefined && !(await this.#leaderAnswers(at))) {
        throw new LeaderAway(`${at.host}:${at.port}`);
      }
    }));
  }

  /**
   * Reads exactly one partition from its latest offset (or `options.since`), calling `onRecord`
   * for each record in order. A handler error is logged and the record skipped; it never stops
   * the consumer.
   */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    options: ConsumeOptions = {},
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
      options,
    );
    const handle: PartitionConsumer = {
      topic,
      partition,
      ready: ready.promise,
      get lag() {
        return reader.lag;
      },
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

// The connection's TLS and SASL options, from the client-neutral settings.
// Whether Kafka refused the client's credentials somewhere in the library's chain of errors.
function refusedCredentials(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== "object" || depth > 8) return false;
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (e.code === "PLT_KFK_AUTHENTICATION") return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => refusedCredentials(x, depth + 1))) {
    return true;
  }
  return refusedCredentials(e.cause, depth + 1);
}

function security(o: KafkaLinkOptions): Pick<BaseOptions, "tls" | "sasl"> {
  const out: Pick<BaseOptions, "tls" | "sasl"> = {};
  if (o.tls) out.tls = tlsOptions(o.tls);
  const sasl = o.sasl;
  if (sasl?.mechanism === "oauthbearer") {
    const provider = tokenSource(o.oauthBearer);
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
