/**
 * The narrow interface between the mesh and Kafka: what the connector and the presence monitor
 * need, and nothing of either client library. `PlatformaticLink` (platformatic/, the default)
 * and `KafkaLink` (kafkajs/) implement it over a real cluster, `MemoryKafka` (memory.ts) in
 * memory for unit tests.
 *
 * @module
 */
import { randomHex32 } from "../bus/_ids.ts";
import type { KafkaClientConfig, OAuthBearerProvider } from "./properties.ts";

/** A record to write: an explicit partition, string headers, bytes or text. */
export interface OutRecord {
  /** Topic name. */
  topic: string;
  /** Partition number. */
  partition: number;
  /** Record key (a random 32-hex id when absent). */
  key?: string;
  /** Record headers. */
  headers?: Record<string, string>;
  /** Record value. */
  value: Uint8Array | string;
}

/** A record read from a partition. */
export interface InRecord {
  /** Topic name. */
  topic: string;
  /** Partition number. */
  partition: number;
  /** Offset, as Kafka's decimal string. */
  offset: string;
  /** Record key. */
  key: string | undefined;
  /** Record headers as strings. */
  headers: Record<string, string>;
  /** Record value. */
  value: Uint8Array;
  /**
   * The record's timestamp (ms since the epoch): when its producer wrote it, or when the broker
   * appended it for a topic with `LogAppendTime`. Absent where the client does not say.
   */
  timestamp?: number;
}

/** Reading one partition: resolves `ready` once records written from now on will be seen. */
export interface PartitionConsumer {
  /** The topic read. */
  readonly topic: string;
  /** The partition read. */
  readonly partition: number;
  /** Resolves once every record written from then on will be seen. */
  readonly ready: Promise<void>;
  /**
   * Records written to the partition and not yet handled, as of the last fetch (a consumer
   * group's lag), when the client knows the log's end.
   */
  readonly lag?: number;
  /** Stops reading. */
  stop(): Promise<void>;
}

/** Traffic counters: produce requests and records sent, fetched batches and records read. */
export interface TrafficCounters {
  /** Produce requests sent. */
  produceRequests: number;
  /** Records sent. */
  recordsSent: number;
  /** Fetched batches handled. */
  batchesRead: number;
  /** Records read. */
  recordsRead: number;
}

/** Where {@link KafkaClient.consumePartition} starts. */
export interface ConsumeOptions {
  /**
   * Start at the first record written at or after this time (ms since the epoch, the records'
   * timestamps) instead of at the end: a reader that must know what was said lately (a starting
   * presence monitor). With no record that recent, it starts at the end.
   */
  since?: number;
  /**
   * After a fetch that brought records, wait this long before the next (0: none; a function is
   * asked each time). A partition that hundreds read (a group's registry) is then fetched in
   * fewer, fuller answers while it is busy; an idle one is not fetched more often. Its records
   * come up to this much later. Clients without their own fetch loop (kafkajs) ignore it.
   */
  lingerMs?: number | (() => number);
  /**
   * How long a fetch that follows one without records may wait at the broker for a record (500
   * ms when unset, as every other fetch). An idle partition costs a fetch per wait at both ends;
   * a longer wait costs nothing in latency (the broker answers as soon as a record comes) but
   * delays the notice of a broker that went silent under this reader alone (the client's other
   * readers still notice a silent cluster). A function is asked before each fetch; a wait of 5 s
   * or more (a quiet member's) holds after a fetch with records too. Clients without their own
   * fetch loop (kafkajs) ignore it.
   */
  maxWaitMs?: number | (() => number);
}

/** What the mesh needs from Kafka. */
export interface KafkaClient {
  /** Bootstrap brokers (for `/health` info). */
  readonly brokers: readonly string[];
  /** Traffic counters. */
  readonly counters: Readonly<TrafficCounters>;
  /**
   * False from the moment a connection to the broker fails until the broker answers again: the
   * mesh then fails at once instead of waiting on retries.
   */
  readonly available: boolean;
  /**
   * Calls `listener` whenever {@link KafkaClient.available} changes; returns what stops it.
   * Optional: without it, a watcher has to look at `available` now and then.
   */
  onAvailability?(listener: () => void): () => void;
  /** Writes records, resolving when the broker has them; order is kept. */
  send(records: OutRecord[]): Promise<void>;
  /**
   * Connects the producer to the leader of `topic`'s `partition` ahead of the first send to it
   * (a join does this while its readers start, so that its first write does not wait for
   * connections on a busy cluster). Optional; a send does it anyway. Never rejects.
   */
  prepareSend?(topic: string, partition: number): Promise<void>;
  /**
   * Reads exactly one partition from its latest offset (or from `options.since`), calling
   * `onRecord` for each record in order. A handler error is logged and the record skipped.
   */
  consumePartition(
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    options?: ConsumeOptions,
  ): PartitionConsumer;
  /** Makes sure `topic` exists (creating it with `partitions`); returns its partition count. */
  ensureTopic(topic: string, partitions: number): Promise<number>;
  /** Grows an existing topic to `count` partitions (one that has as many already is left). */
  createPartitions(topic: string, count: number): Promise<void>;
  /**
   * Topic name → partition count, for every topic; with `only`, for those of them that exist
   * (at least: a client may list more).
   */
  topicPartitions(only?: readonly string[]): Promise<Map<string, number>>;
  /**
   * Writes a loopback record to a partition this client consumes and waits until it is read
   * back; returns the round trip in ms.
   */
  loopback(topic: string, partition: number, timeoutMs?: number): Promise<number>;
  /** Stops every consumer and disconnects. */
  close(): Promise<void>;
}

/** Header of the record a consumer writes to itself to know it is reading (see `ready`). */
export const INIT_HEADER = "_init_";
/** Header of a loopback record. */
export const LOOPBACK_HEADER = "_loopback_";

/**
 * The round trip of one loopback record: registers a random nonce in `waiting` (the client's
 * consumer calls it when the record comes back), writes the record with `send`, and resolves with
 * the round trip in ms, or rejects after `timeoutMs` or when `signal` aborts. The write itself may
 * hang on retries while Kafka is down: the timeout covers both, and whichever loses the race never
 * ends as an unhandled rejection.
 */
export async function loopbackRoundTrip(
  send: (records: OutRecord[]) => Promise<void>,
  waiting: Map<string, () => void>,
  topic: string,
  partition: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<number> {
  signal?.throwIfAborted();
  const nonce = randomHex32();
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const back = new Promise<void>((resolve, reject) => {
    waiting.set(nonce, resolve);
    timer = setTimeout(
      () => reject(new Error(`Loopback test timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    onAbort = () => reject(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const headers = { [LOOPBACK_HEADER]: nonce };
  const roundTrip = send([{ topic, partition, headers, value: "loopback" }]).then(() => back);
  roundTrip.catch(() => {});
  back.catch(() => {});
  try {
    await Promise.race([roundTrip, back]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort!);
    waiting.delete(nonce);
  }
  return Math.round(performance.now() - t0);
}

/**
 * Options of a Kafka link (either client): the brokers, a client id, and optionally the rest of a
 * {@link KafkaClientConfig} (security, timeouts, acks, topic creation).
 */
export interface KafkaLinkOptions extends Partial<Omit<KafkaClientConfig, "brokers" | "clientId">> {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Client id prefix, shown in broker logs. */
  clientId: string;
  /** The token source when `sasl` is OAUTHBEARER: the application's hook. */
  oauthBearer?: OAuthBearerProvider;
  /**
   * `@platformatic/kafka` only: produce and fetch with the library's own requests rather than
   * the wire fast paths (kafka/wire/), as on a cluster that does not speak their versions. For
   * tests, and a way around the fast paths should a library version break them.
   */
  libraryWire?: boolean;
}

/** The reason a consumer's `ready` rejects when it was stopped first. */
export class ConsumerStopped extends Error {
  /** The stopped consumer of `topic`-`partition`. */
  constructor(topic: string, partition: number) {
    super(`Consumer of ${topic}-${partition} stopped`);
    this.name = "ConsumerStopped";
  }
}
