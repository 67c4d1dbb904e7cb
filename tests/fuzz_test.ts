// Property-based fuzzing (fast-check) of what outside input reaches: the envelope decoder, Event
// over HTTP bodies and block records. The processes-level fuzzing of presence frames and Kafka
// records is in hostile_test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Decoder, encode } from "@msgpack/msgpack";
import { EnvelopeDecodeError, EventEnvelope, Platform } from "../mod.ts";
import { eventApi } from "../actuator/mod.ts";
import { BlockAssembler } from "../internal.ts";

const RUNS = 2000;

// Maps that look like envelopes: the wire keys with values of any type.
const KEYS = ["id", "to", "from", "reply_to", "cid", "headers", "body", "status", "tags", "0", "1"];
const envelopeLike = fc.dictionary(fc.constantFrom(...KEYS), fc.anything(), { maxKeys: 8 });

describe("fuzzing: the envelope decoder", () => {
  it("decodes or throws EnvelopeDecodeError for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          EventEnvelope.fromBytes(bytes);
        } catch (e) {
          assert.ok(e instanceof EnvelopeDecodeError, String(e));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("tells the key set from the keys alone exactly as from the decoded map", () => {
    // The envelope's rule: a map whose keys are all strings.
    const stringKeys = new Decoder({
      mapKeyConverter: (k) => {
        if (typeof k !== "string") throw new TypeError("not a string key");
        return k;
      },
    });
    // Any map of wire keys (both key sets, mixed) and any bytes: formatOf reads only the keys
    // when it can, and must answer what the decoded map says, or throw as decoding throws.
    const mixed = fc.dictionary(
      fc.constantFrom(...KEYS, "t", "b", "x", "é"),
      fc.anything(),
      { maxKeys: 8 },
    );
    const input = fc.oneof(
      mixed.map((m) => {
        try {
          return encode(m);
        } catch {
          return new Uint8Array([0x80]);
        }
      }),
      fc.uint8Array({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(input, (bytes) => {
        let decoded: unknown;
        try {
          decoded = stringKeys.decode(bytes);
        } catch {
          decoded = undefined;
        }
        const isMap = decoded !== null && typeof decoded === "object" && !Array.isArray(decoded) &&
          !(decoded instanceof Uint8Array) && Object.keys(decoded).every((k) =>
            typeof k === "string"
          );
        // A fault inside a value (a nested `__proto__` key, say) is not read by formatOf, which
        // reads only the keys: it may answer, and then decoding the envelope throws.
        if (decoded === undefined) {
          try {
            EventEnvelope.formatOf(bytes);
          } catch {
            return;
          }
          return void assert.throws(() => EventEnvelope.fromBytes(bytes), EnvelopeDecodeError);
        }
        if (!isMap) return void assert.throws(() => EventEnvelope.formatOf(bytes));
        const standard = Object.keys(decoded as object).some((k) => k.length > 1);
        assert.equal(EventEnvelope.formatOf(bytes), standard ? "standard" : "compact");
      }),
      { numRuns: RUNS },
    );
  });

  it("decodes or throws EnvelopeDecodeError for any MsgPack map", () => {
    fc.assert(
      fc.property(envelopeLike, (map) => {
        let bytes: Uint8Array;
        try {
          bytes = encode(map);
        } catch {
          return; // not encodable (a symbol, say): nothing to send
        }
        try {
          const e = EventEnvelope.fromBytes(bytes);
          EventEnvelope.fromBytes(e.toBytes()); // what it decoded, it can send on
        } catch (e) {
          assert.ok(e instanceof EnvelopeDecodeError, String(e));
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzzing: POST /api/event", () => {
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: ["-Devent.api.max.bytes=4096"],
  });
  platform.register("fuzz.echo", (_h, body) => body);
  platform.registerPrivate("fuzz.secret", () => "secret");
  const api = eventApi(platform);
  const allowed = new Set([200, 202, 400, 403, 404, 408, 413]);
  const to = fc.oneof(
    fc.constantFrom(
      "fuzz.echo",
      "fuzz.secret",
      "temporary.inbox",
      `temporary.inbox@${platform.origin}`,
      `fuzz.echo@${platform.origin}`,
    ),
    fc.string({ maxLength: 40 }),
  );
  const body = fc.oneof(
    fc.uint8Array({ maxLength: 5000 }),
    fc.record({ to, cid: fc.string(), headers: fc.dictionary(fc.string(), fc.string()) })
      .map((m) => encode(m)),
  );

  it("answers every body with a clear status, never 500 and never a throw", async () => {
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (bytes, async) => {
        const res = await api(
          new Request("http://localhost/api/event", {
            method: "POST",
            body: bytes as BodyInit,
            headers: { "x-ttl": "100", ...(async ? { "x-async": "true" } : {}) },
          }),
        );
        assert.ok(allowed.has(res.status), `status ${res.status}`);
        await res.body?.cancel();
      }),
      { numRuns: 500 },
    );
  });
});

describe("fuzzing: block records", () => {
  it("never throws and stays within its caps", () => {
    const header = fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.integer({ min: -2, max: 2000 }).map(String),
    );
    const block = fc.record({
      _id_: fc.constantFrom("a", "b", "c", "d", "e", ""),
      _blk_: header,
      _max_: header,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(block, fc.uint8Array({ maxLength: 3000 })), { maxLength: 60 }),
        (blocks) => {
          const asm = new BlockAssembler({ maxSets: 3, maxPendingBytes: 10_000 });
          for (const [headers, bytes] of blocks) {
            const r = asm.add(new EventEnvelope({ headers, body: bytes }), 0);
            assert.ok(["partial", "complete", "invalid"].includes(r.kind));
            assert.ok(asm.pending <= 3, `${asm.pending} sets`);
            assert.ok(asm.pendingBytes <= 10_000, `${asm.pendingBytes} bytes`);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
