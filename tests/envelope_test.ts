import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Decoder, encode, Encoder } from "@msgpack/msgpack";
import { EnvelopeDecodeError, EventEnvelope, MinimeshError } from "../mod.ts";

interface Vector {
  name: string;
  format: "standard" | "compact";
  base64: string;
  expect: Record<string, unknown>;
}

// The golden vectors of the reference implementation (see fixtures/NOTICE.md).
const vectorsFile = fileURLToPath(new URL("./fixtures/envelope-vectors.json", import.meta.url));
const vectors: Vector[] = JSON.parse(readFileSync(vectorsFile, "utf8")).vectors;

const FIELD_OF: Record<string, keyof EventEnvelope> = {
  id: "id",
  to: "to",
  from: "from",
  reply_to: "replyTo",
  cid: "correlationId",
  trace_id: "traceId",
  trace_path: "tracePath",
  span_id: "spanId",
  status: "status",
  headers: "headers",
  tags: "tags",
  annotations: "annotations",
  body: "body",
  stack: "stack",
  exec_time: "execTime",
  round_trip: "roundTrip",
};

function bytesOf(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

describe("golden envelope vectors", () => {
  it("has all seven vectors", () => assert.equal(vectors.length, 7));
  for (const v of vectors) {
    it(`decodes ${v.name}`, () => {
      const bytes = bytesOf(v.base64);
      const e = EventEnvelope.fromBytes(bytes);
      assert.equal(EventEnvelope.formatOf(bytes), v.format);
      for (const [key, expected] of Object.entries(v.expect)) {
        const field = FIELD_OF[key];
        assert.ok(field, `vector field ${key} is mapped`);
        let actual = e[field];
        // JSON cannot hold 9007199254740993; the decoder keeps it exact as a bigint.
        if (key === "body" && typeof (actual as Record<string, unknown>)?.long === "bigint") {
          const body = actual as Record<string, unknown>;
          assert.equal(body.long, 9007199254740993n);
          actual = { ...body, long: Number(body.long) };
        }
        assert.deepEqual(actual, expected, `${v.name}: ${key}`);
      }
    });
    it(`re-encodes ${v.name} in its own format and decodes it the same`, () => {
      const e = EventEnvelope.fromBytes(bytesOf(v.base64));
      const again = EventEnvelope.fromBytes(e.toBytes(v.format));
      assert.deepEqual(again.toMap("standard"), e.toMap("standard"));
      assert.equal(EventEnvelope.formatOf(e.toBytes(v.format)), v.format);
    });
  }
});

describe("EventEnvelope", () => {
  it("round-trips every field through COMPACT and STANDARD", () => {
    const e = new EventEnvelope({
      to: "a.b",
      from: "c.d",
      replyTo: "temporary.inbox@x",
      correlationId: "c1",
      traceId: "t1",
      tracePath: "GET /x",
      spanId: "s1",
      status: 201,
      headers: { h: "v" },
      tags: { rpc: "100" },
      annotations: { n: 1 },
      body: { bytes: new Uint8Array([1, 2, 3]), list: [1, "two", null], big: 2n ** 63n - 1n },
      stack: "at x",
      type: "T",
      execTime: 1.25,
      roundTrip: 2.5,
    });
    for (const format of ["compact", "standard"] as const) {
      const copy = EventEnvelope.fromBytes(e.toBytes(format));
      assert.deepEqual(copy.toMap("standard"), e.toMap("standard"), format);
      assert.equal(copy.id, e.id);
    }
  });

  it("encodes COMPACT by default with one-letter keys", () => {
    const map = new EventEnvelope({ to: "a.b", body: 1 }).toMap();
    assert.ok(Object.keys(map).every((k) => k.length === 1), Object.keys(map).join());
    assert.equal(EventEnvelope.formatOf(new EventEnvelope({ to: "a.b" }).toBytes()), "compact");
  });

  it("always writes id and headers in STANDARD", () => {
    const map = new EventEnvelope({ id: "e1" }).toMap("standard");
    assert.deepEqual(map, { id: "e1", headers: {}, status: 200 });
  });

  it("gives new envelopes a 32-hex id", () => {
    const a = new EventEnvelope(), b = new EventEnvelope();
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.notEqual(a.id, b.id);
  });

  it("turns Dates into ISO-8601 strings and Maps into maps", () => {
    const when = new Date("2026-01-02T03:04:05.006Z");
    const e = EventEnvelope.fromBytes(
      new EventEnvelope({ body: { when, m: new Map([["k", 1]]), s: new Set([1]) } }).toBytes(),
    );
    assert.deepEqual(e.body, { when: "2026-01-02T03:04:05.006Z", m: { k: 1 }, s: [1] });
  });

  it("sets headers as strings without CR/LF", () => {
    const e = new EventEnvelope().setHeader("a", 1).setHeader("b", null).setHeader("c", "x\r\ny");
    assert.deepEqual(e.headers, { a: "1", b: "", c: "xy" });
  });

  it("reports errors", () => {
    assert.equal(new EventEnvelope({ status: 500, body: "boom" }).error, "boom");
    assert.equal(
      new EventEnvelope({ status: 400, body: { type: "error", status: 400, message: "bad" } })
        .error,
      "bad",
    );
    assert.equal(new EventEnvelope({ body: "fine" }).error, undefined);
    assert.equal(new EventEnvelope({ body: "fine" }).isError, false);
  });

  it("copies maps but shares the body", () => {
    const body = { n: 1 };
    const a = new EventEnvelope({ headers: { x: "1" }, tags: { t: "1" }, body });
    const b = a.copy();
    b.headers.x = "2";
    b.tags.t = "2";
    assert.equal(a.headers.x, "1");
    assert.equal(a.tags.t, "1");
    assert.equal(b.body, body);
    assert.equal(b.id, a.id);
  });

  it("ignores unknown keys and coerces scalar header values", () => {
    const e = EventEnvelope.fromBytes(encode({ to: "a.b", headers: { n: 5, t: true }, extra: 1 }));
    assert.deepEqual(e.headers, { n: "5", t: "true" });
  });
});

describe("EventEnvelope.fromBytes on bad input", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty bytes", new Uint8Array(), /no bytes/],
    ["truncated map", new Uint8Array([0x81]), /malformed MsgPack/],
    ["truncated string", encode({ to: "hello.world" }).slice(0, 6), /malformed MsgPack/],
    ["a list at the top", encode([1, 2]), /top level must be a map, got a list/],
    ["a string at the top", encode("hi"), /top level must be a map, got string/],
    ["an integer key", new Uint8Array([0x81, 0x01, 0x02]), /map keys must be strings/],
    ["headers that are not a map", encode({ H: 5 }), /field headers must be strmap/],
    ["a nested header value", encode({ H: { a: { b: 1 } } }), /headers.a must be a string/],
    ["a string status", encode({ S: "ok" }), /field status must be int/],
    ["reserved byte 0xc1", new Uint8Array([0xc1]), /malformed MsgPack/],
  ];
  for (const [name, bytes, message] of cases) {
    it(`rejects ${name} with EnvelopeDecodeError`, () => {
      assert.throws(() => EventEnvelope.fromBytes(bytes), (e: unknown) => {
        assert.ok(e instanceof EnvelopeDecodeError);
        assert.ok(e instanceof MinimeshError);
        assert.equal(e.code, "INVALID_ENVELOPE");
        assert.match(e.message, message);
        assert.equal(e.status, 400);
        return true;
      });
    });
  }

  it("survives random garbage without any other kind of error", () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 40) }, () => rand() * 256);
      try {
        EventEnvelope.fromBytes(bytes);
      } catch (e) {
        assert.ok(e instanceof EnvelopeDecodeError, `${e} for ${bytes}`);
      }
    }
  });
});

// toBytes/fromBytes write and read the fields directly; the map-based path (toMap and the
// library's codec, fromMap) is the reference they must match byte for byte and field for field.
describe("the direct codec matches the map-based one", () => {
  const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
  const decoder = new Decoder({
    useBigInt64: true,
    mapKeyConverter: (k: unknown) => {
      if (typeof k !== "string") throw new TypeError("non-string key");
      return k;
    },
  });
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
  const text = () =>
    pick([
      "",
      "demo.echo",
      "temporary.inbox@2026112600734eb5fd4542fab5c43db0f9825037",
      "x".repeat(31),
      "y".repeat(32),
      "z".repeat(300),
      "héllo wörld",
      "日本語のテキスト",
      "emoji 🎉",
    ]);
  const number = () =>
    pick([
      0,
      -0,
      1,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 40,
      -1,
      -32,
      -33,
      -128,
      -129,
      -32768,
      -32769,
      -(2 ** 31),
      -(2 ** 31) - 1,
      1.5,
      -2.25,
      1e300,
      NaN,
    ]);
  const scalar = (): unknown => pick([text, number, () => rand() < 0.5, () => null])();
  const any = (depth = 0): unknown =>
    depth > 2 ? scalar() : pick([
      scalar,
      scalar,
      () => Uint8Array.from({ length: Math.floor(rand() * 300) }, () => rand() * 256),
      () => Array.from({ length: Math.floor(rand() * 4) }, () => any(depth + 1)),
      () =>
        Object.fromEntries(
          Array.from({ length: Math.floor(rand() * 4) }, () => [text(), any(depth + 1)]),
        ),
      () => new Date(Math.floor(rand() * 2e12)),
      () => BigInt(2 ** 53) + 7n,
    ])();
  const strings = () =>
    Object.fromEntries(Array.from({ length: Math.floor(rand() * 20) }, () => [text(), text()]));
  const randomEnvelope = () => {
    const init: Record<string, unknown> = {};
    const add = (k: string, v: () => unknown) => rand() < 0.5 && (init[k] = v());
    for (
      const k of [
        "id",
        "to",
        "from",
        "replyTo",
        "correlationId",
        "traceId",
        "tracePath",
        "spanId",
        "stack",
        "type",
      ]
    ) add(k, text);
    add("status", () => pick([200, 404, 500, 201]));
    add("headers", strings);
    add("tags", strings);
    add("annotations", () => ({ a: any(), b: any() }));
    add("body", () => any());
    add("exception", () => new Uint8Array([1, 2, 3]));
    add("execTime", number);
    add("roundTrip", number);
    return new EventEnvelope(init);
  };
  // Every field, with the id only where the bytes had one (otherwise each side makes its own).
  const fields = (e: EventEnvelope, withId: boolean) => {
    const m = e.toMap("standard");
    if (!withId) delete m.id;
    return m;
  };
  const reference = (bytes: Uint8Array): Record<string, unknown> | Error => {
    try {
      const map = decoder.decode(bytes);
      if (
        map === null || typeof map !== "object" || Array.isArray(map) || map instanceof Uint8Array
      ) {
        return new Error("not a map");
      }
      return map as Record<string, unknown>;
    } catch (e) {
      return e as Error;
    }
  };
  const same = (bytes: Uint8Array, what: string) => {
    const map = reference(bytes);
    let expected: Record<string, unknown> | Error = map;
    if (!(map instanceof Error)) {
      try {
        expected = EventEnvelope.fromMap(map).toMap("standard");
      } catch (e) {
        expected = e as Error;
      }
    }
    let actual: EventEnvelope | Error;
    try {
      actual = EventEnvelope.fromBytes(bytes);
    } catch (e) {
      actual = e as Error;
    }
    if (expected instanceof Error || actual instanceof Error) {
      assert.equal(actual instanceof Error, expected instanceof Error, `${what}: ${actual}`);
      return;
    }
    const raw = map as Record<string, unknown>;
    const standard = Object.keys(raw).some((k) => k.length > 1);
    const withId = typeof raw[standard ? "id" : "0"] === "string";
    if (!withId) delete expected.id;
    assert.deepEqual(fields(actual, withId), expected, what);
  };

  it("writes the same bytes for 3,000 random envelopes", () => {
    for (let i = 0; i < 3000; i++) {
      const e = randomEnvelope();
      for (const format of ["compact", "standard"] as const) {
        assert.deepEqual(e.toBytes(format), encoder.encode(e.toMap(format)), `${i} ${format}`);
      }
    }
  });

  it("reads the same envelopes (or fails alike) from those bytes and mutations of them", () => {
    let mutated = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = randomEnvelope().toBytes(rand() < 0.5 ? "compact" : "standard");
      same(bytes, `intact ${i}`);
      for (let m = 0; m < 5; m++) {
        const b = Uint8Array.from(bytes);
        const at = Math.floor(rand() * b.length);
        const kind = m % 3;
        const changed = kind === 0
          ? (b[at] = Math.floor(rand() * 256), b)
          : kind === 1
          ? b.slice(0, at)
          : Uint8Array.from([...b.slice(0, at), Math.floor(rand() * 256), ...b.slice(at)]);
        if (changed.length === 0) continue;
        same(changed, `mutation ${m} of ${i}`);
        mutated++;
      }
    }
    assert.ok(mutated > 10_000);
  });

  it("keeps earlier encodings intact while later ones fill the shared slab", () => {
    const first = new EventEnvelope({ to: "a.b", body: "first" }).toBytes();
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 2000; i++) {
      new EventEnvelope({ to: "c.d", body: "x".repeat(i % 900) }).toBytes();
    }
    assert.deepEqual(first, copy);
    assert.equal(EventEnvelope.fromBytes(first).body, "first");
    // A detached slab (its buffer transferred away) is replaced, not written into.
    const moved = new EventEnvelope({ to: "e.f", body: 1 }).toBytes();
    const slab = moved.buffer as ArrayBuffer;
    structuredClone(slab, { transfer: [slab] });
    assert.equal(EventEnvelope.fromBytes(new EventEnvelope({ body: 2 }).toBytes()).body, 2);
  });

  it("reads mixed, unknown and duplicate keys as the map-based path does", () => {
    for (
      const map of [
        { T: "a", to: "b" },
        { to: "b", T: "a" },
        { T: "a", T2: "x" },
        { T: "a", Z: 1 },
        { to: "a", __proto__x: 1 },
        { H: { a: "1", b: null } },
        { H: { a: 1, b: true } },
        { H: {}, B: null, S: null },
      ]
    ) same(encode(map), JSON.stringify(map));
    // Duplicate keys: the last one wins.
    same(new Uint8Array([0x82, 0xa1, 0x54, 0xa1, 0x61, 0xa1, 0x54, 0xa1, 0x62]), "duplicate T");
    same(new Uint8Array([0x82, 0xa1, 0x54, 0xa1, 0x61, 0xa1, 0x54, 0xc0]), "T then nil");
  });
});
