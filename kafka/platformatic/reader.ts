/**
 * The fetch loop of one partition over `@platformatic/kafka`, without consumer groups: it asks
 * the partition's leader for its end offset and then fetches from the offset it keeps itself,
 * with our fetch requests (`../wire/`) or the library's. After every interruption it checks
 * that the log it resumes is the one it read (the topic's id, and the last record handled with
 * its key, by the rules of `../_reading.ts`); otherwise it reads the log from its start.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { ListOffsetTimestamps } from "@platformatic/kafka";
import type { Consumer } from "@platformatic/kafka";
import { logger } from "../../bus/_log.ts";
import type { ConsumeOptions, InRecord, TrafficCounters } from "../client.ts";
import { LOOPBACK_HEADER } from "../client.ts";
import { textOf } from "../_bytes.ts";
import { kindOf, PartitionLog } from "../_reading.ts";
import type { Placed } from "../_reading.ts";
import { fetchPartition, fromLibrary, topicIdBytes } from "../wire/mod.ts";
import type { FetchedBatch, FetchedPartition, FetchedRecord } from "../wire/mod.ts";
import { apiError, isNetwork, LeaderAway } from "./_errors.ts";
import { LEADER_AWAY_WAIT_MS } from "../_availability.ts";

const log = logger("kafka");

/** How long a fetch waits at the broker for a record, unless told (a stop ends it at once). */
const FETCH_WAIT_MS = 500;
const FETCH_BYTES = 4 * 1024 * 1024;
/**
 * A fetch waiting this long or more asks for the leader's address (the library's metadata) when
 * it is three such waits old, instead of 5 s (the library's `metadataMaxAge`): else each fetch of
 * a quiet member would be two requests.
 */
const LONG_WAIT_MS = 5000;
const CONTROL_BATCH = 0x20;

/** What a {@link PartitionReader} reports to its link. */
export interface ReaderLink {
  readonly counters: TrafficCounters;
  /** Whether to fetch with the library's requests only (see `KafkaLinkOptions.libraryWire`). */
  libraryWire: boolean;
  /** A fetch was answered. */
  answered(): void;
  /**
   * A fetch leaves, to be answered within `expectMs`: call the result when it ends, with whether
   * it failed.
   */
  waiting(expectMs: number): (failed: boolean) => void;
  /** A loopback record came back. */
  loopedBack(nonce: string): void;
  /** The wait before try `attempt`. */
  backoff(attempt: number): number;
  /** Whether a leader takes a connection now (asked after a failure: see `leaderAnswers`). */
  leaderAnswers(leader: { host: string; port: number }): Promise<boolean>;
}

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

/** The fetch loop of one partition. */
export class PartitionReader {
  /** Records written and not yet handled, as of the last fetch. */
  lag: number | undefined = undefined;
  readonly #link: ReaderLink;
  readonly #consumer: Consumer;
  readonly #topic: string;
  readonly #partition: number;
  readonly #onRecord: (record: InRecord) => void | Promise<void>;
  readonly #signal: AbortSignal;
  /** Where to start (a record time), instead of the end. */
  readonly #since: number | undefined;
  /** The wait after a fetch that brought records (see `ConsumeOptions.lingerMs`). */
  readonly #linger: () => number;
  /** How long a fetch of the idle partition waits at the broker (`ConsumeOptions.maxWaitMs`). */
  readonly #idleWaitMs: () => number;
  /** The wait of the next fetch: the usual one while records come, the idle one after none. */
  #waitMs = FETCH_WAIT_MS;
  /** Where it is in the log; it resumes where it stopped, so one mark is enough. */
  readonly #log = new PartitionLog(1);
  #topicId = "";
  #topicIdBytes: Uint8Array = new Uint8Array(16);
  #leader = -1;
  #leaderAddress: { host: string; port: number } | undefined;

  /**
   * @param link What it reports to.
   * @param consumer The library's client whose connections it fetches on.
   * @param topic The topic and partition it reads.
   * @param onRecord Called for each record, in order.
   * @param signal Ends the loop.
   * @param options Where to start (`since`) and how long to linger after records came.
   */
  constructor(
    link: ReaderLink,
    consumer: Consumer,
    topic: string,
    partition: number,
    onRecord: (record: InRecord) => void | Promise<void>,
    signal: AbortSignal,
    options: ConsumeOptions = {},
  ) {
    this.#link = link;
    this.#consumer = consumer;
    this.#topic = topic;
    this.#partition = partition;
    this.#onRecord = onRecord;
    this.#signal = signal;
    this.#since = options.since;
    const linger = options.lingerMs ?? 0;
    this.#linger = typeof linger === "number" ? () => linger : linger;
    const idle = options.maxWaitMs ?? FETCH_WAIT_MS;
    this.#idleWaitMs = typeof idle === "number" ? () => idle : idle;
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
    this.#leaderAddress = meta.brokers.get(p.leader);
    return replaced;
  }

  async #offsetAt(timestamp: bigint): Promise<bigint | undefined> {
    const offsets = await this.#consumer.listOffsets({
      topics: [this.#topic],
      partitions: { [this.#topic]: [this.#partition] },
      timestamp,
    });
    return offsets.get(this.#topic)?.[this.#partition];
  }

  #replaced(why: string): void {
    log.warn("{topic}-{partition} was replaced ({why}): reading it from its start", {
      topic: this.#topic,
      partition: this.#partition,
      why,
    });
    this.#log.replaced();
  }

  /** Reads until the signal ends it; `ready` is called once it knows where the log ends. */
  async run(ready: () => void): Promise<void> {
    const signal = this.#signal;
    const log_ = this.#log;
    // Start at the end (what is written from then on has a later offset), or at the first
    // record of `since`: the broker answers -1 when none is that recent, and the end is next.
    for (let attempt = 1; log_.next < 0; attempt++) {
      try {
        await this.#locate();
        if (this.#since !== undefined) {
          log_.next = Number((await this.#offsetAt(BigInt(this.#since))) ?? -1);
        }
        if (log_.next < 0) log_.next = Number(await this.#offsetAt(ListOffsetTimestamps.LATEST));
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
        if (this.#leader < 0) {
          if (await this.#locate()) this.#replaced("it has a new topic id");
          // After a failure: a leader whose host is gone is asked again after the next look
          // at the cluster, not after a connection timeout.
          const at = this.#leaderAddress;
          if (attempt > 0 && at !== undefined && !(await this.#link.leaderAnswers(at))) {
            throw new LeaderAway(`${at.host}:${at.port}`); // (the leader is asked again below)
          }
        }
        // After a break the last record handled is fetched again, to compare its key (the
        // offset is taken after `#locate`, which may have sent the reader back to the start).
        from = resync ? log_.resumeAt() : log_.next;
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
        this.#waitMs = FETCH_WAIT_MS; // and soon know whether the new connection answers
        resync = true;
        // (The leader's check took its time already: the cluster is asked again soon.)
        await sleep(
          e instanceof LeaderAway ? LEADER_AWAY_WAIT_MS : this.#link.backoff(attempt),
          signal,
        );
        continue;
      }
      attempt = 0;
      this.#link.answered();
      if (signal.aborted) return;
      const batches = response.batches;
      // Busy, the fetches are as they always were; idle, they wait longer (maxWaitMs). Told to
      // wait long (a quiet member), a reader keeps it after records too: they are not its own
      // traffic (a keep-alive, a peer's join), and a record ends a wait at once anyway (a
      // 500-ms fetch after each keep-alive woke an idle member twice more: bench/idle_long.ts).
      const idleMs = this.#idleWaitMs();
      this.#waitMs = batches.length && idleMs < LONG_WAIT_MS ? FETCH_WAIT_MS : idleMs;
      if (resync && from < log_.next) {
        const verdict = log_.judge(placed(batches[0]), { asked: from });
        // Nothing came back yet (the broker is still loading the log): ask again.
        if (batches.length === 0) continue;
        if (verdict !== "same") {
          this.#replaced(`the record at offset ${from} is gone or has another key`);
          resync = false;
          continue;
        }
      }
      resync = false;
      await this.#handle(batches);
      // Records written and not yet handled (what a consumer group's lag would say).
      if (response.highWatermark !== undefined) {
        this.lag = Math.max(0, response.highWatermark - log_.next);
      }
      // The next fetch waits for the end of the turn: the sends its records' handlers made (the
      // replies, the next requests) are written first, since they are what the other side waits
      // for (~10 % more requests per second at 64 in flight).
      if (batches.length) {
        await new Promise((r) => setImmediate(r));
        const linger = this.#linger();
        if (linger > 0) await sleep(linger, signal);
      }
    }
  }

  // Our fetch (views of one buffer per response); the library's when the cluster does not speak
  // fetch v17.
  async #fetch(from: number): Promise<FetchedPartition> {
    const ended = this.#link.waiting(this.#waitMs);
    let failed = true;
    try {
      const fetched = await this.#fetchOnce(from);
      failed = false;
      return fetched;
    } finally {
      ended(failed);
    }
  }

  async #fetchOnce(from: number): Promise<FetchedPartition> {
    const ours = this.#link.libraryWire ? undefined : await fetchPartition(this.#consumer, {
      topic: this.#topic,
      topicId: this.#topicIdBytes,
      partition: this.#partition,
      leader: this.#leader,
      offset: from,
      maxWaitMs: this.#waitMs,
      maxBytes: FETCH_BYTES,
      metadataMaxAgeMs: this.#waitMs >= LONG_WAIT_MS ? 3 * this.#waitMs : undefined,
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
      maxWaitTime: this.#waitMs,
      minBytes: 1,
      maxBytes: FETCH_BYTES,
    });
    const partition = response.responses[0]?.partitions[0];
    return {
      batches: (partition?.records ?? []).map(fromLibrary),
      highWatermark: partition === undefined ? undefined : Number(partition.highWatermark),
    };
  }

  async #handle(batches: FetchedBatch[]): Promise<void> {
    const log_ = this.#log;
    let count = 0;
    let lastOffset = -1;
    let lastKey: Uint8Array | null = null;
    for (const batch of batches) {
      const first = batch.firstOffset;
      const last = first + batch.lastOffsetDelta;
      if (last < log_.next) continue;
      if ((batch.attributes & CONTROL_BATCH) === 0) {
        for (const record of batch.records) {
          const offset = first + record.offsetDelta;
          if (offset < log_.next) continue;
          count++;
          lastOffset = offset;
          lastKey = record.key;
          if (!log_.take(offset, record.key)) {
            log.debug("{topic}-{partition}: offset {offset} is a record written again; skipped", {
              topic: this.#topic,
              partition: this.#partition,
              offset: String(offset),
            });
            continue;
          }
          const done = this.#deliver(record, offset);
          if (done !== undefined) await done;
          if (this.#signal.aborted) break;
        }
      }
      if (this.#signal.aborted) break;
      if (last + 1 > log_.next) log_.next = last + 1;
    }
    if (count > 0) {
      this.#link.counters.batchesRead++;
      this.#link.counters.recordsRead += count;
      log_.mark(lastOffset, lastKey);
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
    const headers = record.headers;
    const kind = kindOf(headers);
    if (kind === "init") return; // another client's start token
    if (kind === "loopback") {
      this.#link.loopedBack(headers[LOOPBACK_HEADER]);
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

// The records of a fetched batch as the reading policy sees them.
function placed(batch: FetchedBatch | undefined): Placed[] {
  if (batch === undefined) return [];
  return batch.records.map((r) => ({ offset: batch.firstOffset + r.offsetDelta, key: r.key }));
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
