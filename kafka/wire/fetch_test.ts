import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  createRecordsBatch,
  fetchV17,
  kGetApi,
  kMetadata,
  Reader,
  readRecordsBatches,
} from "@platformatic/kafka";
import type { Consumer } from "@platformatic/kafka";
import { FETCH_VERSION, fetchPartition, fetchRequest, readBatches, topicIdBytes } from "./fetch.ts";
import { produceRequest } from "./produce.ts";

type Message = {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Map<Buffer, Buffer | null>;
  timestamp: bigint;
};

function message(i: number, size: number, headers: number, key: string | null = `key-${i}`) {
  const h = new Map<Buffer, Buffer | null>();
  for (let j = 0; j < headers; j++) {
    // A null value, a non-ASCII one, and ASCII ones of one and more characters.
    const value = j === 2 ? null : Buffer.from(j === 1 ? `v${j}-é-${i}` : j === 0 ? "1" : `v${j}`);
    h.set(Buffer.from(`_h${j}_`), value);
  }
  return {
    topic: "t",
    partition: 0,
    key: key === null ? null : Buffer.from(key),
    value: size < 0 ? null : Buffer.alloc(size, i),
    headers: h,
    timestamp: 1_795_000_000_000n + BigInt(i * 37),
  };
}

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);

// What the library's reader makes of the same bytes, in our shape.
function library(bytes: Buffer) {
  return readRecordsBatches(Reader.from(bytes)).map((b) => ({
    firstOffset: Number(b.firstOffset),
    lastOffsetDelta: b.lastOffsetDelta,
    attributes: b.attributes,
    records: b.records.map((r) => ({
      offsetDelta: r.offsetDelta,
      timestamp: Number(b.firstTimestamp + r.timestampDelta),
      key: r.key === null ? null : [...r.key],
      value: r.value === null ? null : [...r.value],
      headers: Object.fromEntries(
        r.headers.filter(([k]) => k !== null).map((
          [k, v],
        ) => [text(k!), v === null ? "" : text(v)]),
      ),
    })),
  }));
}

function ours(bytes: Uint8Array) {
  return readBatches(bytes).map((b) => ({
    ...b,
    records: b.records.map((r) => ({
      offsetDelta: r.offsetDelta,
      timestamp: r.timestamp,
      key: r.key === null ? null : [...r.key],
      value: r.value === null ? null : [...r.value],
      headers: r.headers,
    })),
  }));
}

function batch(messages: Message[], options = {}): Buffer {
  // deno-lint-ignore no-explicit-any
  return createRecordsBatch(messages as any, options).buffer;
}

describe("readBatches", () => {
  it("reads what the library reads: keys, null keys and values, headers, sizes across varints", () => {
    const batches = [
      batch([message(0, 1, 0)]),
      batch([message(1, 170, 2), message(2, 0, 3, null), message(3, -1, 1)]),
      batch(Array.from({ length: 300 }, (_, i) => message(i, i * 7, i % 4))),
      batch([message(4, 20_000, 2, "k".repeat(200))]),
    ];
    // With a base offset, as the broker returns them.
    batches[1].writeBigInt64BE(1234567890123n, 0);
    const all = Buffer.concat(batches);
    assert.deepEqual(ours(all), library(all));
    assert.equal(ours(all).length, 4);
    assert.equal(ours(all)[1].firstOffset, 1234567890123);
  });

  it("reads the batches of our own produce request", () => {
    const records = Array.from({ length: 64 }, (_, i) => ({
      topic: "t",
      partition: 0,
      key: Buffer.from(String(i).padStart(32, "0")),
      value: Buffer.alloc(170, i),
      headers: [
        Buffer.from("_event_"),
        Buffer.from("1"),
        Buffer.from("_rx_"),
        Buffer.from("x".repeat(40)),
      ],
    }));
    const body = produceRequest(records, 1, 5000);
    // null id (1), acks (2), timeout (4), topics (1), name (1 + 1), partitions (1), index (4),
    // then the records' length + 1 as an unsigned varint
    let at = 15;
    let size = 0;
    for (let scale = 1;; scale *= 128) {
      const b = body[at++];
      size += (b & 0x7f) * scale;
      if (b < 0x80) break;
    }
    const bytes = body.subarray(at, at + size - 1);
    assert.equal(body.length - at - (size - 1), 3); // the tagged fields that follow
    const read = readBatches(bytes);
    assert.equal(read.length, 1);
    assert.equal(read[0].records.length, 64);
    assert.deepEqual(ours(bytes), library(Buffer.from(bytes)));
  });

  it("leaves out a batch the fetch cut off", () => {
    const whole = batch([message(0, 100, 2)]);
    const cut = Buffer.concat([whole, whole.subarray(0, whole.length - 10)]);
    assert.equal(readBatches(cut).length, 1);
    assert.equal(readBatches(whole.subarray(0, 11)).length, 0);
  });

  it("hands a compressed batch to the library's reader", () => {
    const messages = Array.from({ length: 20 }, (_, i) => message(i, 50, 2));
    const bytes = batch(messages, { compression: "gzip" });
    assert.notEqual(readBatches(bytes)[0].attributes & 7, 0);
    assert.deepEqual(ours(bytes), library(bytes));
    assert.equal(readBatches(bytes)[0].records.length, 20);
  });

  it("says a record that runs past its batch is truncated", () => {
    const bytes = batch([message(0, 100, 0)]);
    // Claim a longer value than the batch holds.
    const at = bytes.length - 100 - 2;
    bytes[at] = 0xfe;
    bytes[at + 1] = 0x03;
    assert.throws(() => readBatches(bytes), /truncated/);
  });
});

describe("fetchRequest", () => {
  // What the library writes for the same fetch, given the topic id as it has it (its defaults
  // where ours has none).
  function library(o: Parameters<typeof fetchRequest>[0], topicId: string): Buffer {
    return fetchV17.createRequest(
      o.maxWaitMs,
      1,
      o.maxBytes,
      1,
      0,
      -1,
      [{
        topicId,
        partitions: [{
          partition: o.partition,
          currentLeaderEpoch: -1,
          fetchOffset: BigInt(o.offset),
          lastFetchedEpoch: -1,
          partitionMaxBytes: o.maxBytes,
        }],
      }],
      [],
      "",
    ).buffer;
  }

  it("writes the library's bytes, across offsets and topic ids", () => {
    for (const offset of [0, 1, 255, 2 ** 31, 2 ** 32 + 7, 2 ** 53 - 1]) {
      for (const id of [crypto.randomUUID(), crypto.randomUUID().toUpperCase()]) {
        const o = {
          topic: "t",
          topicId: topicIdBytes(id),
          partition: offset % 7,
          leader: 1,
          offset,
          maxWaitMs: 5000,
          maxBytes: 1 << 20,
        };
        assert.deepEqual(fetchRequest(o), library(o, id), `offset ${offset}, topic ${id}`);
      }
    }
  });

  it("asks the library for metadata as old as the fetch allows", async () => {
    const asked: unknown[] = [];
    // A client that speaks fetch v17 and fails the metadata step, after noting what it was asked.
    const consumer = {
      [kGetApi]: (_name: string, cb: (e: Error | null, api: unknown) => void) =>
        cb(null, { version: FETCH_VERSION }),
      [kMetadata]: (options: { metadataMaxAge?: number }, cb: (e: Error) => void) => {
        asked.push(options.metadataMaxAge);
        cb(new Error("no metadata here"));
      },
    } as unknown as Consumer;
    const o = {
      topic: "t",
      topicId: topicIdBytes(crypto.randomUUID()),
      partition: 0,
      leader: 1,
      offset: 0,
      maxWaitMs: 500,
      maxBytes: 1 << 20,
    };
    await assert.rejects(fetchPartition(consumer, o), /no metadata here/);
    await assert.rejects(fetchPartition(consumer, { ...o, metadataMaxAgeMs: 30_000 }));
    assert.deepEqual(asked, [undefined, 30_000], "the client's own age, then the one given");
  });

  it("names a topic id that is not one", () => {
    assert.throws(() => topicIdBytes("not-an-id"), /"not-an-id" is not a topic id/);
  });
});
