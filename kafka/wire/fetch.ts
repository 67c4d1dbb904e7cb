// A fetch (v17) of one partition through `@platformatic/kafka`'s connections, its request written
// and its response read by us: the library gives every record's key, value, header name and header
// value a `Buffer` of its own and its fetch call goes through retries, sessions and diagnostics the
// reader does not use (together ~1.5 µs a record under Deno); its request writer allocates per
// field (~13 µs a request). Here a record's fields are views of one buffer and the request is one
// buffer of 76 bytes. A compressed batch is handed to the library's reader.
import { Buffer } from "node:buffer";
import {
  createAPI,
  kGetApi,
  kGetConnection,
  kMetadata,
  Reader,
  readRecordsBatch,
  ResponseError,
  Writer,
} from "@platformatic/kafka";
import type { Consumer, RecordsBatch } from "@platformatic/kafka";
import { HEADER_NAMES, valueOf } from "../_bytes.ts";

/** The fetch API version this module speaks. */
export const FETCH_VERSION = 17;

/** One record of a fetched batch; its key and value are views of the response. */
export interface FetchedRecord {
  offsetDelta: number;
  /** ms since the epoch (the batch's time for LogAppendTime). */
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  /** Header names and values as text (a null value as ""; a header without a name left out). */
  headers: Record<string, string>;
}

/** A record batch as fetched. */
export interface FetchedBatch {
  firstOffset: number;
  lastOffsetDelta: number;
  attributes: number;
  records: FetchedRecord[];
}

const COMPRESSION = 0x07;
const BATCH_HEAD = 8 + 4; // base offset, length
/** The batch attribute bit of a topic whose timestamps the broker sets (LogAppendTime). */
const LOG_APPEND_TIME = 0x08;
const RECORDS_AT = 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4; // up to the record count

/** Reads zigzag varints (and varlongs within ±2^53) from a byte array. */
class Cursor {
  at: number;
  constructor(readonly bytes: Uint8Array, at: number) {
    this.at = at;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.bytes[this.at++];
      if (b === undefined) throw new RangeError("Record batch is truncated");
      result += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }
  bytesOrNull(): Uint8Array | null {
    const n = this.varint();
    if (n < 0) return null;
    const end = this.at + n;
    if (end > this.bytes.length) throw new RangeError("Record batch is truncated");
    const view = this.bytes.subarray(this.at, end);
    this.at = end;
    return view;
  }
  /** Moves past a length-prefixed field; its length (-1 for null). */
  skip(): number {
    const n = this.varint();
    if (n > 0) {
      this.at += n;
      if (this.at > this.bytes.length) throw new RangeError("Record batch is truncated");
    }
    return n;
  }
  /** Reads a header into `out`, as text straight from the bytes (no view of its own). */
  header(out: Record<string, string>): void {
    const nameLength = this.skip();
    const nameEnd = this.at;
    const valueLength = this.skip();
    if (nameLength < 0) return;
    const nameStart = nameEnd - nameLength;
    out[HEADER_NAMES.decode(this.bytes, nameStart, nameEnd)] = valueLength < 0
      ? ""
      : valueOf(this.bytes, this.at - valueLength, this.at);
  }
}

/** A batch as the library reads it (a compressed one, or when the library fetched), ours. */
export function fromLibrary(batch: RecordsBatch): FetchedBatch {
  return {
    firstOffset: Number(batch.firstOffset),
    lastOffsetDelta: batch.lastOffsetDelta,
    attributes: batch.attributes,
    records: batch.records.map((r) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of r.headers) if (k !== null) headers[HEADER_NAMES.decode(k)] = valueOf(v);
      const timestamp = (batch.attributes & LOG_APPEND_TIME) !== 0
        ? Number(batch.maxTimestamp)
        : Number(batch.firstTimestamp) + Number(r.timestampDelta);
      return { offsetDelta: r.offsetDelta, timestamp, key: r.key, value: r.value, headers };
    }),
  };
}

function int32(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

// Offsets are exact as numbers up to 2^53.
function int64(b: Uint8Array, at: number): number {
  return int32(b, at) * 2 ** 32 + (int32(b, at + 4) >>> 0);
}

/**
 * The record batches in `bytes` (a fetch response's records): whole batches only, as a fetch may
 * end inside one.
 */
export function readBatches(bytes: Uint8Array): FetchedBatch[] {
  const batches: FetchedBatch[] = [];
  let at = 0;
  while (bytes.length - at >= BATCH_HEAD) {
    const length = int32(bytes, at + 8);
    const end = at + BATCH_HEAD + length;
    if (end > bytes.length) break; // cut off by the fetch's byte limit
    const attributes = (bytes[at + 21] << 8) | bytes[at + 22];
    if ((attributes & COMPRESSION) !== 0) {
      batches.push(
        fromLibrary(readRecordsBatch(Reader.from(Buffer.from(bytes.subarray(at, end))))),
      );
    } else {
      const firstOffset = int64(bytes, at);
      const lastOffsetDelta = int32(bytes, at + 23);
      const appended = (attributes & LOG_APPEND_TIME) !== 0;
      const firstTimestamp = int64(bytes, at + (appended ? 35 : 27)); // max or first timestamp
      const count = int32(bytes, at + RECORDS_AT);
      const records: FetchedRecord[] = new Array(count);
      const c = new Cursor(bytes.subarray(0, end), at + RECORDS_AT + 4);
      for (let i = 0; i < count; i++) {
        c.varint(); // length
        c.at++; // attributes
        const timestampDelta = c.varint();
        const timestamp = appended ? firstTimestamp : firstTimestamp + timestampDelta;
        const offsetDelta = c.varint();
        const key = c.bytesOrNull();
        const value = c.bytesOrNull();
        const n = c.varint();
        const headers: Record<string, string> = {};
        for (let h = 0; h < n; h++) c.header(headers);
        records[i] = { offsetDelta, timestamp, key, value, headers };
      }
      batches.push({ firstOffset, lastOffsetDelta, attributes, records });
    }
    at = end;
  }
  return batches;
}

/** What a fetch of one partition returned. */
export interface FetchedPartition {
  /** The record batches; empty when nothing was there before the wait ended. */
  batches: FetchedBatch[];
  /** The partition's high watermark: the offset after the last record readers may see. */
  highWatermark?: number;
}

// The response's fields before and around the records as the library reads them (its
// `ResponseError` for error codes, with the same paths), the records by `readBatches`.
function parseResponse(
  _correlationId: number,
  apiKey: number,
  apiVersion: number,
  reader: Reader,
): FetchedPartition {
  const errors: [string, [number, null]][] = [];
  reader.readInt32(); // throttle time
  const errorCode = reader.readInt16();
  if (errorCode !== 0) errors.push(["", [errorCode, null]]);
  reader.readInt32(); // session id
  const out: FetchedPartition = { batches: [] };
  reader.readArray((r, i) => {
    r.readUUID();
    r.readArray(
      (r, j) => {
        r.readInt32(); // partition index
        const code = r.readInt16();
        if (code !== 0) errors.push([`/responses/${i}/partitions/${j}`, [code, null]]);
        const highWatermark = Number(r.readInt64());
        if (i === 0 && j === 0) out.highWatermark = highWatermark;
        r.skip(8 + 8); // last stable offset, log start offset
        r.readNullableArray((r) => r.skip(16)); // aborted transactions
        r.readInt32(); // preferred read replica
        const size = r.readUnsignedVarInt() - 1;
        if (size > 0) {
          const records = r.buffer.slice(r.position, r.position + size);
          if (i === 0 && j === 0) {
            out.batches = readBatches(
              new Uint8Array(records.buffer, records.byteOffset, records.length),
            );
          }
          r.skip(size);
        }
        r.readTaggedFields();
      },
      true,
      false,
    );
  });
  reader.readTaggedFields();
  if (errors.length) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), out);
  return out;
}

const fetchApi = createAPI<[Buffer], FetchedPartition>(
  1,
  FETCH_VERSION,
  (body: Buffer) => Writer.create().append(body),
  parseResponse,
);

/** What to fetch: one partition of one topic from its leader. */
export interface FetchOptions {
  topic: string;
  /** The topic id's 16 bytes ({@link topicIdBytes}). */
  topicId: Uint8Array;
  partition: number;
  leader: number;
  offset: number;
  maxWaitMs: number;
  maxBytes: number;
  /**
   * How old the client's cached metadata (the leader's address) may be before this fetch asks
   * for it again (the client's `metadataMaxAge`, 5 s, when unset).
   */
  metadataMaxAgeMs?: number;
}

const REQUEST_SIZE = 4 + 4 + 4 + 1 + 4 + 4 + 1 + 16 + 1 + 4 + 4 + 8 + 4 + 8 + 4 + 1 + 1 + 1 + 1 + 1;

/** The 16 bytes of a topic id as the library writes it (a UUID string). */
export function topicIdBytes(id: string): Uint8Array {
  const hex = id.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`"${id}" is not a topic id`);
  return Buffer.from(hex, "hex");
}

/**
 * The body of a fetch v17 request for one partition from `o.offset`, without a fetch session
 * (session id 0, epoch -1: a full fetch that opens none), read committed, answered as soon as
 * there is a record: byte for byte what the library's `fetchV17.createRequest` writes for it.
 */
export function fetchRequest(o: FetchOptions): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_SIZE);
  let at = b.writeInt32BE(o.maxWaitMs, 0);
  at = b.writeInt32BE(1, at); // min bytes
  at = b.writeInt32BE(o.maxBytes, at);
  at = b.writeInt8(1, at); // isolation: read committed, as the library's default
  at = b.writeInt32BE(0, at); // session id
  at = b.writeInt32BE(-1, at); // session epoch
  b[at++] = 2; // one topic (compact arrays count one more)
  b.set(o.topicId, at);
  at += 16;
  b[at++] = 2; // one partition
  at = b.writeInt32BE(o.partition, at);
  at = b.writeInt32BE(-1, at); // current leader epoch: not known
  at = b.writeInt32BE(Math.floor(o.offset / 2 ** 32), at);
  at = b.writeUInt32BE(o.offset >>> 0, at);
  at = b.writeInt32BE(-1, at); // last fetched epoch
  at = b.writeInt32BE(-1, at); // log start offset (-1, a consumer's)
  at = b.writeInt32BE(-1, at);
  at = b.writeInt32BE(o.maxBytes, at); // partition max bytes
  b[at++] = 0; // the partition's tagged fields
  b[at++] = 0; // the topic's
  b[at++] = 1; // no forgotten topics
  b[at++] = 1; // rack id: empty
  b[at++] = 0; // the request's tagged fields
  if (at !== REQUEST_SIZE) throw new Error(`fetch request: wrote ${at} of ${REQUEST_SIZE} bytes`);
  return b;
}

/**
 * Fetches one partition from its leader over `consumer`'s connections, without a fetch session.
 * Resolves `undefined`, fetching nothing, when the cluster does not speak fetch v17 (the caller
 * then uses the library's fetch). Errors are the library's (`ResponseError`, `NetworkError`).
 */
export function fetchPartition(
  consumer: Consumer,
  o: FetchOptions,
): Promise<FetchedPartition | undefined> {
  return new Promise((resolve, reject) => {
    consumer[kGetApi]("Fetch", (error, api) => {
      if (error) return reject(error);
      if (api?.version !== FETCH_VERSION) return resolve(undefined);
      const ask = { topics: [o.topic], metadataMaxAge: o.metadataMaxAgeMs };
      consumer[kMetadata](ask, (error, metadata) => {
        if (error) return reject(error);
        const broker = metadata!.brokers.get(o.leader);
        if (broker === undefined) return reject(new Error(`Broker ${o.leader} is not known`));
        consumer[kGetConnection](broker, (error, connection) => {
          if (error) return reject(error);
          fetchApi(
            connection!,
            fetchRequest(o),
            (error: Error | null, response?: FetchedPartition) =>
              error ? reject(error) : resolve(response),
          );
        });
      });
    });
  });
}
