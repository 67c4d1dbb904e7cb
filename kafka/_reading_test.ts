// The reading policy both Kafka links follow (_reading.ts): simulated logs, rewinds, replaced
// logs and records written twice, generated, with what a reader hands on counted.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { kindOf, PartitionLog } from "./_reading.ts";
import type { Placed } from "./_reading.ts";

const encoder = new TextEncoder();
const key = (s: string) => encoder.encode(s.padEnd(32, "."));
// A log of `n` records with random 32-byte keys, from offset 0.
const log = (n: number, tag: string): Placed[] =>
  Array.from({ length: n }, (_, i) => ({ offset: i, key: key(`${tag}-${i}-${Math.random()}`) }));

// What a reader hands on of `batches` of the log `all`, with `reading`'s rules (its rewinds
// judged as the kafkajs reader's, with the log's end and no commit); a replaced log is read from
// its start as the readers do.
function read(reading: PartitionLog, batches: Placed[][], all: Placed[]): Placed[] {
  const handed: Placed[] = [];
  const evidence = { logEnd: all.length, committed: -1 };
  for (let b of batches) {
    if (b.length === 0) continue;
    if (
      reading.next >= 0 && b[0].offset < reading.next &&
      reading.judge(b, evidence) === "replaced"
    ) {
      reading.replaced();
      b = all.filter((r) => r.offset <= b[b.length - 1].offset);
    }
    for (const r of b) if (reading.take(r.offset, r.key)) handed.push(r);
    reading.mark(b[b.length - 1].offset, b[b.length - 1].key);
  }
  return handed;
}

describe("the reading policy", () => {
  it("tells its own records from events", () => {
    assert.equal(kindOf({ _init_: "t" }), "init");
    assert.equal(kindOf({ _loopback_: "n" }), "loopback");
    assert.equal(kindOf({ _event_: "" }), "event");
  });

  it("hands on each record once however the same log is given again (rewinds)", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 40 })), { maxLength: 40 }),
      (n, cuts) => {
        const all = log(n, "a");
        // Batches that go forward, with rewinds to any earlier offset in between.
        const batches: Placed[][] = [];
        let at = 0;
        for (const [back, size] of cuts) {
          if (at >= n) break;
          const from = batches.length > 0 && back % 3 === 0 ? Math.max(0, at - 1 - back % at) : at;
          batches.push(all.slice(from, Math.min(n, from + size)));
          at = Math.max(at, Math.min(n, from + size));
        }
        batches.push(all.slice(at));
        const handed = read(new PartitionLog(4096), batches, all);
        assert.deepEqual(handed.map((r) => r.offset), all.map((r) => r.offset));
      },
    ));
  });

  it("reads a replaced log from its start, and each of its records once", () => {
    fc.assert(fc.property(
      fc.integer({ min: 2, max: 100 }),
      fc.integer({ min: 1, max: 100 }),
      (n, m) => {
        const first = log(n, "old");
        const reading = new PartitionLog(4096);
        read(reading, [first], first);
        // The topic deleted and created again: offsets from 0, other keys.
        const second = log(m, "new");
        const handed = read(reading, [second.slice(0, Math.min(m, n))], second);
        const rest = read(reading, [second], second);
        assert.deepEqual(
          [...handed, ...rest].map((r) => r.offset),
          second.map((r) => r.offset),
        );
      },
    ));
  });

  it("judges by the key at a remembered offset, then by what the reader knows", () => {
    const reading = new PartitionLog(8);
    const all = log(10, "x");
    read(reading, [all.slice(0, 5), all.slice(5)], all);
    assert.equal(reading.next, 10);
    assert.equal(reading.judge([all[8], all[9]]), "same");
    assert.equal(reading.judge([{ offset: 9, key: key("other") }]), "replaced");
    assert.equal(reading.judge([{ offset: 7, key: key("y") }]), "unknown");
    // Asked for the last record handled (remembered), given records without it: gone.
    assert.equal(reading.resumeAt(), 9);
    assert.equal(reading.judge([{ offset: 10, key: key("z") }], { asked: 9 }), "replaced");
    // A reader with commits: before the confirmed commit, or a shorter log with none.
    assert.equal(reading.judge([all[6]], { logEnd: 10, committed: 8 }), "replaced");
    assert.equal(reading.judge([all[6]], { logEnd: 7, committed: -1 }), "replaced");
    assert.equal(reading.judge([all[6]], { logEnd: 10, committed: 5 }), "unknown");
    reading.replaced();
    assert.equal(reading.next, 0);
    assert.equal(reading.resumeAt(), 0);
  });

  it("skips a record written twice (a produce tried again), at any offset after", () => {
    const reading = new PartitionLog();
    const k = key("twice");
    assert.equal(reading.take(0, k), true);
    assert.equal(reading.take(1, key("other")), true);
    assert.equal(reading.take(2, k), false);
    assert.equal(reading.next, 3);
    // Short or missing keys are not random enough to tell: always handed on.
    assert.equal(reading.take(3, encoder.encode("k")), true);
    assert.equal(reading.take(4, encoder.encode("k")), true);
    assert.equal(reading.take(5, null), true);
  });

  it("keeps a copy of a mark, and at most its number of marks", () => {
    const reading = new PartitionLog(2);
    const bytes = key("mark");
    reading.mark(0, bytes);
    bytes.fill(0);
    assert.equal(reading.judge([{ offset: 0, key: key("mark") }]), "same");
    reading.mark(1, key("b"));
    reading.mark(2, key("c"));
    assert.equal(reading.judge([{ offset: 0, key: key("zzz") }]), "unknown");
  });
});
