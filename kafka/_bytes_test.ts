import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { bytesOf, HeaderNames, HeaderValues, valueOf } from "./_bytes.ts";

describe("bytesOf", () => {
  it("encodes ASCII, non-ASCII and long strings as Buffer.from does", () => {
    for (const s of ["", "1", "0123456789abcdef0123456789abcdef", "héllo ☃", "x".repeat(300)]) {
      assert.deepEqual(bytesOf(s), Buffer.from(s), JSON.stringify(s));
    }
  });

  it("never writes over bytes it returned before, across slabs", () => {
    const kept = Array.from({ length: 5000 }, (_, i) => [String(i).padStart(32, "0"), ""]);
    for (const k of kept) k[1] = bytesOf(k[0]).toString();
    const views = kept.map(([s]) => [s, bytesOf(s)] as const);
    for (let i = 0; i < 5000; i++) bytesOf("f".repeat(200)); // several slabs further on
    for (const [s, b] of views) assert.equal(b.toString(), s);
    for (const [s, t] of kept) assert.equal(t, s);
  });
});

describe("HeaderNames", () => {
  it("encodes a name once and decodes known and unknown names", () => {
    const names = new HeaderNames(2);
    assert.equal(names.encode("_rx_"), names.encode("_rx_"));
    names.encode("_event_");
    names.encode("third"); // over the limit: encoded, not remembered
    assert.notEqual(names.encode("third"), names.encode("third"));
    for (const n of ["_rx_", "_event_", "third", "_rx", "_rx__", "_ry_", ""]) {
      assert.equal(names.decode(Buffer.from(n)), n);
    }
    // A name inside a larger buffer, known or not.
    const b = Buffer.from("xx_rx_yy_ry_z");
    assert.equal(names.decode(b, 2, 6), "_rx_");
    assert.equal(names.decode(b, 8, 12), "_ry_");
  });
});

describe("HeaderValues", () => {
  it("encodes a repeating value once, and starts again when full", () => {
    const values = new HeaderValues(2);
    const rx = values.encode("2026112600734eb5fd4542fab5c43db0f9825037");
    assert.equal(values.encode("2026112600734eb5fd4542fab5c43db0f9825037"), rx);
    assert.equal(rx.toString(), "2026112600734eb5fd4542fab5c43db0f9825037");
    values.encode("1");
    values.encode("nonce"); // the third: the cache starts again
    assert.notEqual(values.encode("2026112600734eb5fd4542fab5c43db0f9825037"), rx);
    const long = "x".repeat(65);
    assert.notEqual(values.encode(long), values.encode(long));
    assert.deepEqual(values.encode("héllo"), Buffer.from("héllo"));
  });
});

describe("valueOf", () => {
  it("decodes values, one-character ones included", () => {
    assert.equal(valueOf(null), "");
    assert.equal(valueOf(undefined), "");
    for (const v of ["1", "", "é", "2026112600734eb5fd4542fab5c43db0f9825037"]) {
      assert.equal(valueOf(Buffer.from(v)), v);
    }
  });

  it("gives the right value when one repeats, alternates or differs in one byte", () => {
    const a = "2026112600734eb5fd4542fab5c43db0f9825037";
    const b = a.slice(0, -1) + "8";
    const seq = [a, a, b, a, b, b, "x".repeat(100), "x".repeat(100), a, "é".repeat(20)];
    for (const v of seq) assert.equal(valueOf(Buffer.from(v)), v);
    // Bytes changed after decoding are not taken for the value decoded before.
    const bytes = new TextEncoder().encode(a);
    assert.equal(valueOf(bytes), a);
    bytes[0] = 0x39;
    assert.equal(valueOf(bytes), "9" + a.slice(1));
  });

  it("decodes a value inside a larger buffer", () => {
    const b = Buffer.from("_rx_abcé1");
    assert.equal(valueOf(b, 4, 9), "abcé");
    assert.equal(valueOf(b, 9, 10), "1");
    assert.equal(valueOf(b, 4, 4), "");
    assert.equal(valueOf(b, 4, 9), "abcé"); // the cached last value
    assert.equal(valueOf(b, 0, 4), "_rx_");
  });
});
