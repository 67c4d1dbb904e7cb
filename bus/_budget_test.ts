import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Encoder } from "@msgpack/msgpack";
import { checkBudget, DEFAULT_BUDGET, UNCHECKED_BYTES } from "./_budget.ts";
import { EnvelopeDecodeError } from "./errors.ts";
import { EventEnvelope } from "./envelope.ts";

const encoder = new Encoder({ useBigInt64: true, maxDepth: 1000 });
const encode = (v: unknown) => encoder.encode(v);
const UNLIMITED = { maxDepth: 1_000_000, maxDecodedBytes: Number.MAX_SAFE_INTEGER };
// Padding that makes a message long enough to be checked, at no depth.
const PAD = "p".repeat(UNCHECKED_BYTES);

function nested(depth: number, inner: unknown = 1): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
}

function refused(bytes: Uint8Array, budget = DEFAULT_BUDGET): string | undefined {
  try {
    checkBudget(bytes, budget);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof EnvelopeDecodeError, String(e));
    assert.match(e.message, /^Invalid event envelope: message too costly to decode: /);
    return e.message;
  }
}

describe("checkBudget", () => {
  it("lets every well-formed value through an unlimited budget, and stops on its last byte", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.uint8Array({ maxLength: 50 }), (value, bin) => {
        assert.equal(refused(encode([PAD, value, bin]), UNLIMITED), undefined);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses exactly the values nested deeper than maxDepth", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), (d, max) => {
        // [PAD, nested(d)] nests d + 1 deep.
        const problem = refused(encode([PAD, nested(d)]), { ...UNLIMITED, maxDepth: max });
        assert.equal(problem !== undefined, d + 1 > max, `depth ${d + 1}, max ${max}`);
        if (problem) assert.match(problem, new RegExp(`nested over ${max} levels`));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses decode bombs of every shape at their first excess, whatever their encoded size", () => {
    const bombs = fc.oneof(
      fc.integer({ min: 1e6, max: 4e6 }).map((n) => ["empty maps", new Uint8Array(n).fill(0x80)]),
      fc.integer({ min: 1e6, max: 4e6 }).map((n) => ["empty lists", new Uint8Array(n).fill(0x90)]),
      fc.integer({ min: 1e5, max: 1e6 }).map((n) => ["nesting", new Uint8Array(n).fill(0x91)]),
      fc.integer({ min: 5e4, max: 2e5 }).map((n) => [
        "one wide map",
        encode(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 0]))),
      ]),
      fc.integer({ min: 1e6, max: 2e6 }).map((n) => [
        "short strings",
        encode(Array.from({ length: n }, (_, i) => `s${i % 1000}`)),
      ]),
    ) as fc.Arbitrary<[string, Uint8Array]>;
    fc.assert(
      fc.property(bombs, ([what, bytes]) => {
        // A list or map header in front, so that the flat fills are one value.
        const framed = new Uint8Array(bytes.length + 5);
        framed.set([0xdd, 0, 0, 0, 0]);
        new DataView(framed.buffer).setUint32(1, bytes.length);
        framed.set(bytes, 5);
        assert.ok(refused(framed) !== undefined, what);
        assert.throws(() => EventEnvelope.fromBytes(framed), EnvelopeDecodeError);
      }),
      { numRuns: 15 },
    );
  });

  it("lets large plain payloads through: 16 MiB of bytes or text, 30,000 records", () => {
    assert.equal(refused(encode({ b: new Uint8Array(16 * 1024 * 1024) })), undefined);
    assert.equal(refused(encode({ s: "x".repeat(16 * 1024 * 1024) })), undefined);
    const records = Array.from({ length: 30_000 }, (_, i) => ({
      id: i,
      name: `n${i}`,
      ok: true,
      v: 1.5,
      tags: ["a", "b"],
    }));
    assert.equal(refused(encode(records)), undefined);
  });

  it("never throws anything else on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: UNCHECKED_BYTES + 1, maxLength: 6000 }), (bytes) => {
        refused(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it("is applied by EventEnvelope.fromBytes (with the caller's budget) and formatOf", () => {
    // STANDARD keys; the envelope's own encoder stops at 100 levels, as the decoder does.
    const deep = encode({ to: "a.b", body: [PAD, nested(150)] });
    assert.throws(() => EventEnvelope.fromBytes(deep), /nested over 100 levels/);
    // formatOf reads the keys alone, decoding nothing; when it must decode (a key that is not
    // ASCII), it does so within the budget.
    assert.equal(EventEnvelope.formatOf(deep), "standard");
    const odd = encode({ "é": 1, to: "a.b", body: [PAD, nested(150)] });
    assert.throws(() => EventEnvelope.formatOf(odd), /nested over 100 levels/);
    const e = EventEnvelope.fromBytes(deep, { budget: { ...DEFAULT_BUDGET, maxDepth: 200 } });
    assert.equal(e.to, "a.b");
  });
});
