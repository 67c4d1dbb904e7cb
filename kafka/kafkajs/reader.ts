/**
 * One partition read through kafkajs. kafkajs has no manual partition assignment (`assign`), so
 * a reader uses a consumer group of its own (nobody else joins it, so no rebalance ever pauses
 * anyone else) with an assigner that hands its single member exactly the wanted partition. It
 * starts at the latest offset, and is ready once it has read back a token it wrote to that
 * partition itself, so nothing written after `ready` can be missed. It commits what it has
 * handled, so that a rejoin resumes there, and keeps to one log by the rules of
 * `../_reading.ts`: across a broker restart every record is handled once.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { AssignerProtocol } from "kafkajs";
import type { Consumer, EachBatchPayload, IHeaders, Kafka, PartitionAssigner } from "kafkajs";
import { logger } from "../../bus/_log.ts";
import { randomHex32 } from "../../bus/_ids.ts";
import { within } from "../../bus/_within.ts";
import { ConsumerStopped, INIT_HEADER, LOOPBACK_HEADER } from "../client.ts";
import type { InRecord, OutRecord, PartitionConsumer, TrafficCounters } from "../client.ts";
import { kindOf, PartitionLog } from "../_reading.ts";

const log = logger("kafka");

/** Batches whose last record's key a reader remembers (about 10 s of a busy partition). */
const SEEN_BATCHES = 4096;

/** How long a stop waits for kafkajs to disconnect. */
export const DISCONNECT_MS = 10_000;

/**
 * Waits for a kafkajs `disconnect()` for up to `ms`, then goes on with a warning: kafkajs's can
 * wait for good (a consumer that retries a connection, or waits for a fetch, when the broker
 * went away), and a stop must end.
 */
export async function disconnectWithin(
  what: string,
  disconnect: () => Promise<void>,
  ms: number = DISCONNECT_MS,
): Promise<void> {
  if (!(await within(disconnect().catch(() => {}), ms))) {
    log.warn("{what} did not disconnect within {s} s: going on without it", {
      what,
      s: ms / 1000,
    });
  }
}

/** What a {@link GroupReader} needs of its link. */
export interface GroupReaderLink {
  readonly counters: TrafficCounters;
  readonly clientId: string;
  /** Resolves once kafkajs is patched (before the first connection). */
  readonly patched: Promise<unknown>;
  send(records: OutRecord[]): Promise<void>;
  /** A loopback record came back. */
  loopedBack(nonce: string): void;
  /** The broker answered a fetch. */
  heard(): void;
  /** The reader stopped. */
  stopped(reader: GroupReader): void;
  /** The offset of the first record written at or after `since` (ms), else the log's end. */
  offsetAt(topic: string, partition: number, since: number): Promise<string | undefined>;
}

/** The reading of one partition through a consumer group of its own. */
export class GroupReader implements PartitionConsumer {
  /** The topic and partition it reads. */
  readonly topic: string;
  readonly partition: number;
  /** Resolves once everything written from now on will be read. */
  readonly ready: Promise<void>;
  /** Set before it starts: read from the first record written at or after this time (ms). */
  since: number | undefined;
  /** Records written and not yet handled, as of the last batch. */
  lag: number | undefined = undefined;
  readonly #link: GroupReaderLink;
  readonly #consumer: Consumer;
  readonly #onRecord: (record: InRecord) => void | Promise<void>;
  readonly #token = randomHex32();
  readonly #readyNow: PromiseWithResolvers<void>;
  #isReady = false;
  #stopped = false;
  readonly #log = new PartitionLog(SEEN_BATCHES);
  /** The last offset the broker confirmed committing for this group (-1: none). */
  #committed = -1;
  /** How many times the log was found replaced (a commit made before is void). */
  #replaced = 0;
  #committedAt = 0;
  /** Where `since` starts, until the first record is read. */
  #rewindTo: string | undefined;
  /** A run (or kafkajs's restart of one) is joining the group. */
  #joining = false;
  readonly #disconnectMs: number;

  /**
   * Creates the reader; {@link GroupReader.start} starts it.
   *
   * @param kafka The link's kafkajs client.
   * @param link What it reports to.
   * @param topic The topic and partition to read.
   * @param onRecord Called for each record, in order; an error is logged and the record skipped.
   * @param disconnectMs How long {@link GroupReader.stop} waits for kafkajs to disconnect.
   */
  constructor(
    kafka: Kafka,
    link: GroupReaderLink,
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    disconnectMs: number = DISCONNECT_MS,
  ) {
    this.#disconnectMs = disconnectMs;
    this.topic = topic;
    this.partition = partition;
    this.#link = link;
    this.#onRecord = onRecord;
    this.#readyNow = Promise.withResolvers<void>();
    this.ready = this.#readyNow.promise;
    this.ready.catch(() => {}); // a caller that never awaits `ready` must not see it fail
    this.#consumer = kafka.consumer({
      groupId: `${link.clientId}.${topic}.${partition}.${this.#token.slice(0, 12)}`,
      // A missing topic is the mesh's to create, with the partitions it needs; the broker would
      // create it with its default count (one, usually).
      allowAutoTopicCreation: false,
      partitionAssigners: [singlePartition(topic, partition)],
      // As the other client's readers: a record ends the wait at once, so the wait only sets
      // how often an idle reader asks (100 ms: ten fetches a second each, 5 ms/s of an idle
      // member's CPU, bench/idle_bench.ts).
      maxWaitTimeInMs: 500,
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
        restartOnFailure: () => Promise.resolve(!this.#stopped),
      },
    });
    // Not noted as requests on their way (for a silent broker): kafkajs reports no failed fetch,
    // so one would wait forever, and Kafka would count as silent again and again.
    this.#consumer.on(this.#consumer.events.FETCH, () => link.heard());
    // A consumer that crashed while starting (a topic just created has no leader yet) restarts
    // with its group gone and with it any seek: each join seeks again until a record came.
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, () => {
      this.#joining = false;
      // Stopped while joining: the stop left the disconnect to now (see `stop`). Once the join
      // returns, the runner counts as running, and a disconnect then leaves the group.
      if (this.#stopped) setTimeout(() => void this.#consumer.disconnect().catch(() => {}), 0);
      else this.#rewind();
    });
    // A crash that restarts joins again; one that does not has disconnected already.
    this.#consumer.on(this.#consumer.events.CRASH, (e) => this.#joining = e.payload.restart);
  }

  /** Back to `since` before the first fetch comes back; kafkajs seeks only while running. */
  #rewind(): void {
    if (this.#rewindTo === undefined || this.#log.next >= 0 || this.#stopped) return;
    try {
      this.#consumer.seek({ topic: this.topic, partition: this.partition, offset: this.#rewindTo });
    } catch {
      // Between a crash and its restart there is no group to seek in; the next join seeks.
    }
  }

  /** Joins its group and writes its token until it comes back. */
  start(): void {
    this.#start().catch((e) => {
      if (this.#stopped) {
        // It may have connected or joined after the stop's disconnect.
        void this.#consumer.disconnect().catch(() => {});
        return;
      }
      this.#readyNow.reject(e);
      log.error("Consumer of {topic}-{partition} failed to start: {message}", {
        topic: this.topic,
        partition: this.partition,
        message: (e as Error).message,
      });
    });
  }

  /** Stops reading and leaves the group. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#link.stopped(this);
    this.#readyNow.reject(new ConsumerStopped(this.topic, this.partition));
    // A disconnect that meets a runner while it joins makes kafkajs drop the runner, which then
    // joins anyway and stays a member of the group, fetching, for good: that disconnect waits
    // for the join (GROUP_JOIN above) or its crash (kafkajs disconnects then by itself).
    if (this.#joining) return;
    // Its committed offsets stay until the broker expires them (`offsets.retention.minutes`
    // after the group empties, 7 days by default); deleting them would need the broker when
    // stopping, which may be when it is gone.
    await disconnectWithin(
      `The consumer of ${this.topic}-${this.partition}`,
      () => this.#consumer.disconnect(),
      this.#disconnectMs,
    );
  }

  // A stop while starting disconnects whatever step is in progress, but kafkajs would carry on
  // with the next one (subscribe, run) and join the group after all: each step checks first.
  #unlessStopped(): void {
    if (this.#stopped) throw new ConsumerStopped(this.topic, this.partition);
  }

  async #start(): Promise<void> {
    const { topic, partition } = this;
    const consumer = this.#consumer;
    await this.#link.patched;
    this.#unlessStopped();
    await consumer.connect();
    this.#unlessStopped();
    if (this.since !== undefined) {
      const offset = await this.#offsetAt(this.since);
      if (offset !== undefined && Number(offset) >= 0) this.#rewindTo = offset;
      this.#unlessStopped();
    }
    await consumer.subscribe({ topic, fromBeginning: false });
    this.#unlessStopped();
    this.#joining = true;
    await consumer.run({
      // Committed by hand (#commit): kafkajs's auto-commit awaits a commit after every batch,
      // which would add a round trip to every request.
      autoCommit: false,
      // Whole fetched batches are handled in one go, so the sends their handlers make are
      // coalesced into one produce request (see `KafkaLink.send`).
      eachBatch: (payload) => this.#batch(payload),
    });
    this.#unlessStopped();
    this.#rewind();
    // Write our token until it comes back: from then on nothing written can be missed.
    const deadline = Date.now() + 60_000;
    while (!this.#isReady && !this.#stopped) {
      if (Date.now() > deadline) {
        throw new Error(`Consumer of ${topic}-${partition} did not become ready in 60 s`);
      }
      await this.#link.send([{
        topic,
        partition,
        headers: { [INIT_HEADER]: this.#token },
        value: "init",
      }]);
      await within(this.ready, 250);
    }
  }

  // Where `since` starts. A topic just created may have no leader known yet everywhere (a
  // cluster: "not the leader for that topic-partition"), so the lookup is tried for about 10 s;
  // then the reader starts at the end, saying so, rather than not at all.
  async #offsetAt(since: number): Promise<string | undefined> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#link.offsetAt(this.topic, this.partition, since);
      } catch (e) {
        this.#unlessStopped();
        if (attempt >= 20) {
          log.warn(
            "{topic}-{partition}: cannot find the offset at {since} ({message}): reading from the end",
            {
              topic: this.topic,
              partition: this.partition,
              since: new Date(since).toISOString(),
              message: (e as Error).message,
            },
          );
          return undefined;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async #batch({ batch }: EachBatchPayload): Promise<void> {
    const { topic, partition } = this;
    const messages = batch.messages;
    if (batch.partition !== partition || messages.length === 0 || this.#stopped) return;
    const counters = this.#link.counters;
    counters.batchesRead++;
    counters.recordsRead += messages.length;
    const log_ = this.#log;
    const firstOffset = Number(messages[0].offset);
    // A batch that starts before what was handled is either a rewind (a rejoin resumes at the
    // last commit, which a broker failover can set back) or a replaced log (the topic was
    // deleted and created again, or the broker lost everything: re-formatted).
    if (log_.next >= 0 && firstOffset < log_.next) {
      const verdict = log_.judge(
        messages.map((m) => ({ offset: Number(m.offset), key: m.key })),
        { logEnd: Number(batch.highWatermark), committed: this.#committed },
      );
      if (verdict === "replaced") {
        log.warn(
          "{topic}-{partition} was replaced (offset {next} handled, log ends at {end}): " +
            "reading it from its start",
          { topic, partition, next: String(log_.next), end: batch.highWatermark },
        );
        log_.replaced();
        this.#committed = -1;
        this.#replaced++;
        if (firstOffset > 0) {
          this.#consumer.seek({ topic, partition, offset: "0" });
          return;
        }
      }
    }
    for (const message of messages) {
      // Handled already (a rejoin hands back what was), or a record written twice.
      if (!log_.take(Number(message.offset), message.key)) continue;
      const headers = headersOf(message.headers);
      const kind = kindOf(headers);
      if (kind === "init") {
        if (headers[INIT_HEADER] === this.#token && !this.#isReady) {
          this.#isReady = true;
          this.#readyNow.resolve();
        }
        continue;
      }
      if (kind === "loopback") {
        this.#link.loopedBack(headers[LOOPBACK_HEADER]);
        continue;
      }
      try {
        const done = this.#onRecord({
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
    log_.mark(Number(last.offset), last.key);
    this.lag = Math.max(0, Number(batch.highWatermark) - log_.next);
    this.#commit();
  }

  // What it has handled is committed, at most once a second and without waiting, so that a
  // rejoin (after the broker restarted, say) resumes there instead of at the end; what it then
  // reads again it has handled already and skips.
  #commit(): void {
    const now = Date.now();
    if (now - this.#committedAt < 1000) return;
    this.#committedAt = now;
    const { topic, partition } = this;
    const offset = this.#log.next;
    const epoch = this.#replaced;
    this.#consumer.commitOffsets([{ topic, partition, offset: String(offset) }]).then(() => {
      if (epoch === this.#replaced && offset > this.#committed) this.#committed = offset;
    }, (e) =>
      log.debug("Commit on {topic}-{partition} failed: {message}", {
        topic,
        partition,
        message: (e as Error).message,
      }));
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
