// The body of a produce request (version 11) written in one pass into one buffer: the
// `@platformatic/kafka` encoder builds each record from a dozen small buffers (one allocation per
// varint) and joins them, ~4 µs a record under Deno, the largest part of a mesh process's CPU
// per request. The bytes are the library's own (`_produce_test.ts` compares them).
import { Buffer } from "node:buffer";
import {
  crc32c,
  createAPI,
  kGetApi,
  kGetConnection,
  kMetadata,
  produceV11,
  Writer,
} from "@platformatic/kafka";
import type { Producer } from "@platformatic/kafka";

/** One record to write, its key, value and header names and values already bytes. */
export interface ProduceRecord {
  topic: string;
  partition: number;
  key: Uint8Array;
  value: Uint8Array;
  /** Header names and values in turn: name, value, name, value (one array, not a Map each). */
  headers: Uint8Array[];
}

/** The produce API version whose request this module writes. */
export const PRODUCE_VERSION = 11;
/** How long the broker may wait for the replicas acks=-1 asks for (the library's default). */
export const PRODUCE_TIMEOUT_MS = 5000;

// The library's produce v11 API (its response parser and errors), with our request body.
const produceApi = createAPI<[Buffer], unknown>(
  0,
  PRODUCE_VERSION,
  (body: Buffer) => Writer.create().append(body),
  produceV11.parseResponse,
);

const encoder = new TextEncoder();

// Sizes of the record batch's fixed fields (Kafka's RecordBatch, magic 2).
const BATCH_HEADER = 8 + 4 + 4 + 1 + 4; // base offset, length, leader epoch, magic, CRC
const BATCH_FIELDS = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4; // attributes .. record count

function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

// Record fields are zigzag varints; every length here is small and non-negative.
function varintSize(n: number): number {
  return uvarintSize(n * 2);
}

class Out {
  readonly buf: Buffer;
  at = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  uvarint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.at++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.at++] = n;
  }
  varint(n: number): void {
    this.uvarint(n * 2);
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  int8(n: number): void {
    this.buf[this.at++] = n;
  }
  int16(n: number): void {
    this.buf.writeInt16BE(n, this.at);
    this.at += 2;
  }
  int32(n: number): void {
    this.buf.writeInt32BE(n, this.at);
    this.at += 4;
  }
  // Exact for the values written here (timestamps, -1): within ±2^53.
  int64(n: number): void {
    const high = Math.floor(n / 2 ** 32);
    this.buf.writeInt32BE(high, this.at);
    this.buf.writeUInt32BE(n - high * 2 ** 32, this.at + 4);
    this.at += 8;
  }
}

function recordBody(r: ProduceRecord, offsetDelta: number): number {
  let size = 1 + 1 + varintSize(offsetDelta) + // attributes, timestamp delta 0, offset delta
    varintSize(r.key.length) + r.key.length +
    varintSize(r.value.length) + r.value.length +
    varintSize(r.headers.length / 2);
  for (const b of r.headers) size += varintSize(b.length) + b.length;
  return size;
}

// The records of one partition, in order, as a record batch.
function batchSize(records: ProduceRecord[], bodies: number[]): number {
  let size = BATCH_HEADER + BATCH_FIELDS;
  for (let i = 0; i < records.length; i++) {
    bodies[i] = recordBody(records[i], i);
    size += varintSize(bodies[i]) + bodies[i];
  }
  return size;
}

function writeBatch(out: Out, records: ProduceRecord[], bodies: number[], now: number): void {
  const start = out.at;
  out.int64(0); // base offset: the broker assigns it
  out.int32(0); // batch length, below
  out.int32(0); // partition leader epoch (as the library)
  out.int8(2); // magic
  out.int32(0); // CRC, below
  const crcFrom = out.at;
  out.int16(0); // attributes: no compression, not transactional
  out.int32(records.length - 1); // last offset delta
  out.int64(now); // first timestamp
  out.int64(now); // max timestamp
  out.int64(-1); // producer id: not idempotent
  out.int16(0); // producer epoch (as the library)
  out.int32(0); // base sequence (as the library)
  out.int32(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    out.varint(bodies[i]);
    out.int8(0); // attributes
    out.int8(0); // timestamp delta: one timestamp for the batch
    out.varint(i);
    out.varint(r.key.length);
    out.bytes(r.key);
    out.varint(r.value.length);
    out.bytes(r.value);
    out.varint(r.headers.length / 2);
    for (const b of r.headers) {
      out.varint(b.length);
      out.bytes(b);
    }
  }
  out.buf.writeInt32BE(out.at - start - 12, start + 8);
  out.buf.writeUInt32BE(crc32c(out.buf.subarray(crcFrom, out.at)), crcFrom - 4);
}

/**
 * The body of a produce request (v11) carrying `records`: one record batch per partition, the
 * records of each in the order given; partitions in ascending order within a topic, topics in the
 * order they first appear.
 */
export function produceRequest(
  records: ProduceRecord[],
  acks: number,
  timeoutMs: number,
  now = Date.now(),
): Buffer {
  const topics = new Map<string, Map<number, ProduceRecord[]>>();
  for (const r of records) {
    let partitions = topics.get(r.topic);
    if (partitions === undefined) topics.set(r.topic, partitions = new Map());
    const list = partitions.get(r.partition);
    if (list === undefined) partitions.set(r.partition, [r]);
    else list.push(r);
  }
  // Sizes first, so that everything is written once into a buffer of the exact size.
  const plan: { name: Uint8Array; parts: [number, ProduceRecord[], number[], number][] }[] = [];
  let size = 1 + 2 + 4 + uvarintSize(topics.size + 1) + 1; // null id, acks, timeout, array, tags
  for (const [topic, partitions] of topics) {
    const name = encoder.encode(topic);
    const parts: [number, ProduceRecord[], number[], number][] = [];
    size += uvarintSize(name.length + 1) + name.length + uvarintSize(partitions.size + 1) + 1;
    for (const p of [...partitions.keys()].sort((a, b) => a - b)) {
      const list = partitions.get(p)!;
      const bodies: number[] = new Array(list.length);
      const bytes = batchSize(list, bodies);
      parts.push([p, list, bodies, bytes]);
      size += 4 + uvarintSize(bytes + 1) + bytes + 1;
    }
    plan.push({ name, parts });
  }
  const out = new Out(size);
  out.uvarint(0); // transactional id: null
  out.int16(acks);
  out.int32(timeoutMs);
  out.uvarint(plan.length + 1);
  for (const { name, parts } of plan) {
    out.uvarint(name.length + 1);
    out.bytes(name);
    out.uvarint(parts.length + 1);
    for (const [partition, list, bodies, bytes] of parts) {
      out.int32(partition);
      out.uvarint(bytes + 1);
      writeBatch(out, list, bodies, now);
      out.uvarint(0); // the partition's tagged fields
    }
    out.uvarint(0); // the topic's
  }
  out.uvarint(0); // the request's
  if (out.at !== size) throw new Error(`produce request: wrote ${out.at} of ${size} bytes`);
  return out.buf;
}

/** A partition that the cluster's metadata does not know: asking again may find it. */
function unknownPartition(topic: string, partition: number): Error {
  return Object.assign(new Error(`${topic}-${partition} has no leader`), {
    apiId: "UNKNOWN_TOPIC_OR_PARTITION",
  });
}

/**
 * A connection's produce requests on their way: a broker handles a connection's requests one at
 * a time, in order, so one that waits for replicas up to its timeout holds those behind it as
 * long; but a connection that works answers one at least each timeout.
 */
export interface ConnectionProgress {
  /** The broker it goes to (`host:port`). */
  readonly broker: string;
  /** When it last answered one, or when it got one to answer while it had none (ms). */
  readonly progressAt: number;
}

interface Progress extends ConnectionProgress {
  /** Produce requests sent on it and not answered yet. */
  unanswered: number;
  progressAt: number;
}

const progress = new WeakMap<object, Progress>();

function progressOf(connection: object, broker: { host: string; port: number }): Progress {
  let p = progress.get(connection);
  if (p === undefined) {
    p = { broker: `${broker.host}:${broker.port}`, unanswered: 0, progressAt: 0 };
    progress.set(connection, p);
  }
  return p;
}

/**
 * Writes `records` with `producer`'s metadata and connections: one request per partition leader,
 * resolving when every leader has its records (acks 1 or -1). Resolves `false`, writing nothing,
 * when the cluster does not speak produce v11 (the caller then lets the library encode).
 * Errors are the library's (`ResponseError`, `NetworkError`); with several leaders, the first,
 * once every leader has answered (so that a retry never holds records still on their way).
 * `sentOn` hears, for each request sent, its connection's progress (read it later: it changes as
 * answers come); `written`, with several leaders, each leader's records once it has them; and
 * `failed`, with several leaders, each leader's records and error once it fails: when it returns
 * true, the caller has taken them over (to try them again at once, not after the slowest leader),
 * and they no longer count here.
 */
export function produceDirect(
  producer: Producer,
  records: ProduceRecord[],
  acks: 1 | -1,
  sentOn?: (connection: ConnectionProgress) => void,
  written?: (records: ProduceRecord[]) => void,
  failed?: (records: ProduceRecord[], error: Error) => boolean,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    producer[kGetApi]("Produce", (error, api) => {
      if (error) return reject(error);
      if (api?.version !== PRODUCE_VERSION) return resolve(false);
      const topics = [...new Set(records.map((r) => r.topic))];
      producer[kMetadata]({ topics, autocreateTopics: false }, (error, metadata) => {
        if (error) return reject(error);
        const byLeader = new Map<number, ProduceRecord[]>();
        for (const r of records) {
          const leader = metadata!.topics.get(r.topic)?.partitions[r.partition]?.leader;
          if (leader === undefined || leader < 0) {
            return reject(unknownPartition(r.topic, r.partition));
          }
          const list = byLeader.get(leader);
          if (list === undefined) byLeader.set(leader, [r]);
          else list.push(r);
        }
        let pending = byLeader.size;
        if (pending === 0) return resolve(true); // nothing to write
        let failure: Error | undefined;
        const several = byLeader.size > 1;
        const done = (list: ProduceRecord[], error: Error | null | undefined) => {
          if (error) {
            if (!several || failed?.(list, error) !== true) failure ??= error;
          } else if (several) written?.(list);
          if (--pending > 0) return;
          if (failure === undefined) resolve(true);
          else reject(failure);
        };
        for (const [leader, list] of byLeader) {
          const broker = metadata!.brokers.get(leader);
          if (broker === undefined) {
            done(list, unknownPartition(list[0].topic, list[0].partition));
            continue;
          }
          producer[kGetConnection](broker, (error, connection) => {
            if (error) return done(list, error);
            const p = progressOf(connection!, broker);
            if (p.unanswered++ === 0) p.progressAt = Date.now();
            sentOn?.(p);
            produceApi(connection!, produceRequest(list, acks, PRODUCE_TIMEOUT_MS), (error) => {
              p.unanswered--;
              p.progressAt = Date.now();
              done(list, error);
            });
          });
        }
      });
    });
  });
}
