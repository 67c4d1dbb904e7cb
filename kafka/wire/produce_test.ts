import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { produceV11, Reader, readRecordsBatch } from "@platformatic/kafka";
import { produceRequest } from "./produce.ts";
import type { ProduceRecord } from "./produce.ts";

const NOW = 1_795_000_000_123;

function record(topic: string, partition: number, key: string, value: Uint8Array, headers = 2) {
  const h: Uint8Array[] = [];
  for (let i = 0; i < headers; i++) h.push(Buffer.from(`_h${i}_`), Buffer.from(`v${i}-${key}`));
  return { topic, partition, key: Buffer.from(key), value, headers: h };
}

// The library's own encoding of the same request (its records with Buffers and a Map).
function library(records: ProduceRecord[], acks: number, timeout: number): Buffer {
  const messages = records.map((r) => {
    const headers = new Map<Buffer, Buffer>();
    for (let i = 0; i < r.headers.length; i += 2) {
      headers.set(Buffer.from(r.headers[i]), Buffer.from(r.headers[i + 1]));
    }
    const value = Buffer.from(r.value);
    return { ...r, key: Buffer.from(r.key), value, headers, timestamp: BigInt(NOW) };
  });
  // deno-lint-ignore no-explicit-any
  return produceV11.createRequest(acks, timeout, messages as any).buffer;
}

describe("produceRequest", () => {
  it("writes the bytes @platformatic/kafka writes", () => {
    const cases: ProduceRecord[][] = [
      [record("t", 0, "k", new Uint8Array([1]), 0)],
      [record("mesh.t", 1, "0".repeat(32), new Uint8Array(170).fill(7))],
      // Several topics and partitions, interleaved; sizes across varint boundaries (63/64,
      // 8191/8192 bytes), an empty value, many records in a batch.
      [
        record("b", 3, "x", new Uint8Array(64)),
        record("a", 1, "y", new Uint8Array(63)),
        record("b", 0, "z", new Uint8Array(8192), 1),
        record("b", 3, "w", new Uint8Array(0)),
        record("a", 1, "v", new Uint8Array(8191), 3),
        ...Array.from({ length: 200 }, (_, i) => record("a", 2, `k${i}`, new Uint8Array(i))),
      ],
    ];
    for (const records of cases) {
      for (const [acks, timeout] of [[1, 5000], [-1, 30_000], [0, 0]]) {
        assert.deepEqual(
          produceRequest(records, acks, timeout, NOW),
          library(records, acks, timeout),
        );
      }
    }
  });

  it("writes record batches the library reads back", () => {
    const records = [
      record("t", 0, "a".repeat(32), new Uint8Array([1, 2, 3])),
      record("t", 0, "b", new Uint8Array(300)),
    ];
    const body = produceRequest(records, 1, 5000, NOW);
    // null id (1), acks (2), timeout (4), topics (1), name (1 + 1), partitions (1), index (4),
    // records length (2 bytes: over 127)
    const batch = body.subarray(1 + 2 + 4 + 1 + 2 + 1 + 4 + 2);
    const read = readRecordsBatch(Reader.from(batch));
    assert.equal(read.records.length, 2);
    assert.equal(read.records[0].key!.toString(), "a".repeat(32));
    assert.deepEqual([...read.records[0].value!], [1, 2, 3]);
    assert.equal(read.records[1].value!.length, 300);
    assert.equal(read.records[1].offsetDelta, 1);
    assert.equal(read.records[1].headers[1][1]!.toString(), "v1-b");
    assert.equal(read.firstTimestamp, BigInt(NOW));
  });
});
