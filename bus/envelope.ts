/**
 * The event envelope: what every event, request and reply travels as, and its MsgPack wire
 * format (the reference's COMPACT and STANDARD key sets).
 *
 * @module
 */
import { nextId } from "./_ids.ts";
import { EnvelopeDecodeError } from "./errors.ts";
import { DECODER, ENCODER, MsgPackReader, MsgPackWriter, NONE } from "./_msgpack.ts";

/** The two key sets of the wire format: one-letter keys (mesh default) or field names. */
export type WireFormat = "compact" | "standard";

/** Fields accepted by the {@link EventEnvelope} constructor. */
export interface EnvelopeInit {
  /** Event id (32 hex characters are generated when absent). */
  id?: string;
  /** Target route, optionally `route@origin`. */
  to?: string;
  /** Sender route. */
  from?: string;
  /** Where a reply goes. */
  replyTo?: string;
  /** Correlation id. */
  correlationId?: string;
  /** Trace id. */
  traceId?: string;
  /** Trace path, such as `GET /api/x`. */
  tracePath?: string;
  /** The sender's span id. */
  spanId?: string;
  /** Status, 200 by default. */
  status?: number;
  /** User headers, string to string. */
  headers?: Record<string, string>;
  /** Engine metadata. */
  tags?: Record<string, string>;
  /** Trace annotations. */
  annotations?: Record<string, unknown>;
  /** The payload: any MsgPack value. */
  body?: unknown;
  /** A Java-serialised exception (opaque). */
  exception?: Uint8Array;
  /** Stack trace text of an error reply. */
  stack?: string;
  /** Advisory type name of the body. */
  type?: string;
  /** How long the function took, in ms. */
  execTime?: number;
  /** Request round trip, in ms. */
  roundTrip?: number;
}

type Field = keyof EnvelopeInit;
type Kind = "string" | "int" | "float" | "strmap" | "anymap" | "bytes" | "any";

// [field, COMPACT key, STANDARD key, value kind]: the table of reference section 1.1.
// fieldValue and setField (the fast path, below) switch on these positions: keep them in step.
const FIELDS: ReadonlyArray<readonly [Field, string, string, Kind]> = [
  ["id", "0", "id", "string"],
  ["to", "T", "to", "string"],
  ["from", "F", "from", "string"],
  ["replyTo", "R", "reply_to", "string"],
  ["traceId", "t", "trace_id", "string"],
  ["tracePath", "p", "trace_path", "string"],
  ["spanId", "s", "span_id", "string"],
  ["correlationId", "X", "cid", "string"],
  ["tags", "7", "tags", "strmap"],
  ["annotations", "6", "annotations", "anymap"],
  ["status", "S", "status", "int"],
  ["headers", "H", "headers", "strmap"],
  ["body", "B", "body", "any"],
  ["exception", "4", "exception", "bytes"],
  ["stack", "5", "stack", "string"],
  ["type", "O", "obj_type", "string"],
  ["execTime", "1", "exec_time", "float"],
  ["roundTrip", "2", "round_trip", "float"],
];
const BY_KEY = new Map<string, readonly [Field, string, string, Kind]>();
for (const f of FIELDS) {
  BY_KEY.set(f[1], f);
  BY_KEY.set(f[2], f);
}

let peekAnnotations: (e: EventEnvelope) => Record<string, unknown> | undefined;
/** The headers map of an envelope, without creating one (for the platform's hot path). */
export let peekHeaders: (e: EventEnvelope) => Record<string, string> | undefined;
/** The tags map of an envelope, without creating one (for the platform's hot path). */
export let peekTags: (e: EventEnvelope) => Record<string, string> | undefined;

/** Replaces (or, with undefined, drops) the tags map of an envelope. */
export let resetTags: (e: EventEnvelope, tags: Record<string, string> | undefined) => void;

/**
 * An event: route, sender, reply address, correlation and trace data, status, headers and body.
 * Headers are strings; the body is any MsgPack value (maps, lists, strings, numbers, booleans,
 * bytes, null).
 *
 * @example Build an event and round-trip it through the wire format
 * ```ts
 * import assert from "node:assert";
 * import { EventEnvelope } from "@minimesh/core";
 * const event = new EventEnvelope({ to: "hello.world", headers: { a: "b" }, body: { n: 1 } });
 * const copy = EventEnvelope.fromBytes(event.toBytes());
 * assert(copy.to === "hello.world" && copy.headers.a === "b");
 * ```
 */
export class EventEnvelope {
  // Generated on first read: most in-memory replies are never asked for their id.
  #id: string | undefined;
  /** Target route, optionally `route@origin`. */
  to: string | undefined;
  /** Sender route. */
  from: string | undefined;
  /** Where a reply goes (`temporary.inbox@<origin>` for requests). */
  replyTo: string | undefined;
  /** Correlation id; for requests the engine swaps it for an inbox id and restores it. */
  correlationId: string | undefined;
  /** Trace id. */
  traceId: string | undefined;
  /** Trace path, such as `GET /api/x`. */
  tracePath: string | undefined;
  /** The sender's span id. */
  spanId: string | undefined;
  /** Status: 200 unless set; 400 or more marks an error reply. */
  status: number;
  // The three maps are created on first read: most in-memory events never use some of them.
  #headers: Record<string, string> | undefined;
  #tags: Record<string, string> | undefined;
  #annotations: Record<string, unknown> | undefined;
  /** The payload: any MsgPack value. */
  body: unknown;
  /** A Java-serialised exception from a Java peer; kept opaque. */
  exception: Uint8Array | undefined;
  /** Stack trace text of an error reply. */
  stack: string | undefined;
  /** Advisory type name of the body. */
  type: string | undefined;
  /** How long the function took, in ms. */
  execTime: number | undefined;
  /** Request round trip seen by the caller, in ms. */
  roundTrip: number | undefined;

  /**
   * Creates an envelope.
   *
   * @param init Initial field values; `id` is generated when absent.
   */
  constructor(init?: EnvelopeInit) {
    // The engine creates most envelopes blank; reading 18 absent fields from a shared
    // polymorphic site would cost more than the whole allocation.
    this.#id = undefined;
    this.to = undefined;
    this.from = undefined;
    this.replyTo = undefined;
    this.correlationId = undefined;
    this.traceId = undefined;
    this.tracePath = undefined;
    this.spanId = undefined;
    this.status = 200;
    this.#headers = undefined;
    this.#tags = undefined;
    this.#annotations = undefined;
    this.body = undefined;
    this.exception = undefined;
    this.stack = undefined;
    this.type = undefined;
    this.execTime = undefined;
    this.roundTrip = undefined;
    if (init !== undefined) this.#assign(init);
  }

  #assign(init: EnvelopeInit): void {
    this.#id = init.id;
    this.to = init.to;
    this.from = init.from;
    this.replyTo = init.replyTo;
    this.correlationId = init.correlationId;
    this.traceId = init.traceId;
    this.tracePath = init.tracePath;
    this.spanId = init.spanId;
    this.status = init.status ?? 200;
    this.#headers = init.headers;
    this.#tags = init.tags;
    this.#annotations = init.annotations;
    this.body = init.body;
    this.exception = init.exception;
    this.stack = init.stack;
    this.type = init.type;
    this.execTime = init.execTime;
    this.roundTrip = init.roundTrip;
  }

  /** User headers, string to string. */
  get headers(): Record<string, string> {
    return this.#headers ??= {};
  }
  set headers(value: Record<string, string>) {
    this.#headers = value;
  }

  /** Engine metadata (`rpc`, `broadcast`, `my_cid`), not shown to functions. */
  get tags(): Record<string, string> {
    return this.#tags ??= {};
  }
  set tags(value: Record<string, string>) {
    this.#tags = value;
  }

  /** Trace annotations carried on a reply. */
  get annotations(): Record<string, unknown> {
    return this.#annotations ??= {};
  }
  set annotations(value: Record<string, unknown>) {
    this.#annotations = value;
  }

  static {
    peekAnnotations = (e) => e.#annotations;
    peekHeaders = (e) => e.#headers;
    peekTags = (e) => e.#tags;
    resetTags = (e, tags) => e.#tags = tags;
  }

  /** Event id: 32 hex characters unless set. */
  get id(): string {
    return this.#id ??= nextId();
  }
  set id(value: string) {
    this.#id = value;
  }

  /**
   * True when this is an error reply (status 400 or above).
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * assert(new EventEnvelope({ status: 404 }).isError);
   * ```
   */
  get isError(): boolean {
    return this.status >= 400;
  }

  /**
   * The error message of an error reply (the body text, or the `message` of an
   * `{type: "error"}` map), or `undefined` when this is not an error.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * assert(new EventEnvelope({ status: 500, body: "boom" }).error === "boom");
   * ```
   */
  get error(): string | undefined {
    if (!this.isError) return undefined;
    const b = this.body;
    if (typeof b === "string") return b;
    if (b && typeof b === "object" && (b as Record<string, unknown>).type === "error") {
      return String((b as Record<string, unknown>).message);
    }
    return b === undefined || b === null ? `Error ${this.status}` : JSON.stringify(toPlain(b));
  }

  /**
   * Sets a header, turning the value into a string (null becomes "", a Date its ISO-8601
   * form) and removing CR/LF, as the reference does. Returns this envelope.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = new EventEnvelope().setHeader("n", 3);
   * assert(e.headers.n === "3");
   * ```
   */
  setHeader(key: string, value: unknown): this {
    this.headers[key] = headerValue(value);
    return this;
  }

  /**
   * A copy of this envelope: maps are copied, the body is shared.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const a = new EventEnvelope({ headers: { x: "1" } });
   * const b = a.copy();
   * b.headers.x = "2";
   * assert(a.headers.x === "1");
   * ```
   */
  copy(): EventEnvelope {
    const c = new EventEnvelope(this);
    c.headers = { ...this.headers };
    c.tags = { ...this.tags };
    c.annotations = { ...this.annotations };
    return c;
  }

  /**
   * The envelope as a plain map with the keys of `format` (absent fields left out). STANDARD
   * always has `id` and `headers`.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const m = new EventEnvelope({ id: "e1", to: "a.b" }).toMap("standard");
   * assert(m.to === "a.b" && m.id === "e1");
   * ```
   */
  toMap(format: WireFormat = "compact"): Record<string, unknown> {
    const keyIndex = format === "compact" ? 1 : 2;
    const out: Record<string, unknown> = {};
    for (const f of FIELDS) {
      const value = this[f[0]];
      if (value === undefined || value === null) continue;
      if ((f[3] === "strmap" || f[3] === "anymap") && isEmpty(value as object)) {
        if (!(format === "standard" && f[0] === "headers")) continue;
      }
      out[f[keyIndex]] = f[3] === "any" || f[3] === "anymap" ? toPlain(value) : value;
    }
    return out;
  }

  /**
   * Serialises the envelope as MsgPack in the given key set (COMPACT by default, as the mesh
   * sends). Small results may share their `buffer` with other results (as Node's pooled
   * Buffers do), so use `byteOffset` and `byteLength` with it.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const bytes = new EventEnvelope({ to: "a.b", body: new Uint8Array([1, 2]) }).toBytes();
   * assert(bytes instanceof Uint8Array);
   * ```
   */
  toBytes(format: WireFormat = "compact"): Uint8Array {
    return encode(this, format);
  }

  /**
   * Builds an envelope from a decoded map in either key set (detected as the reference does:
   * any key longer than one character means STANDARD). Unknown keys are ignored.
   *
   * @throws {EnvelopeDecodeError} When a field has the wrong type.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = EventEnvelope.fromMap({ T: "a.b", H: { k: "v" } });
   * assert(e.to === "a.b" && e.headers.k === "v");
   * ```
   */
  static fromMap(map: Record<string, unknown>): EventEnvelope {
    const standard = isStandard(map);
    const e = new EventEnvelope();
    for (const key in map) {
      const f = BY_KEY.get(key);
      if (!f || f[standard ? 2 : 1] !== key) continue;
      const value = map[key];
      if (value === null || value === undefined) continue;
      // deno-lint-ignore no-explicit-any
      (e as any)[f[0]] = checkField(f[0], f[3], value);
    }
    return e;
  }

  /**
   * Decodes MsgPack bytes in either key set.
   *
   * @throws {EnvelopeDecodeError} For malformed or truncated bytes, a top level that is not a
   * map, non-string keys or a field of the wrong type.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const e = EventEnvelope.fromBytes(new EventEnvelope({ to: "a.b" }).toBytes("standard"));
   * assert(e.to === "a.b");
   * ```
   */
  static fromBytes(bytes: Uint8Array): EventEnvelope {
    return decodeFast(bytes) ?? EventEnvelope.fromMap(decodeMap(bytes));
  }

  /**
   * The key set that `bytes` use, for replying in the caller's format.
   *
   * @throws {EnvelopeDecodeError} As {@link EventEnvelope.fromBytes}.
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { EventEnvelope } from "@minimesh/core";
   * const bytes = new EventEnvelope({ to: "a.b" }).toBytes("standard");
   * assert(EventEnvelope.formatOf(bytes) === "standard");
   * ```
   */
  static formatOf(bytes: Uint8Array): WireFormat {
    return isStandard(decodeMap(bytes)) ? "standard" : "compact";
  }
}

function decodeMap(bytes: Uint8Array): Record<string, unknown> {
  if (!(bytes instanceof Uint8Array)) {
    throw new EnvelopeDecodeError(`expected bytes, got ${typeof bytes}`);
  }
  if (bytes.length === 0) throw new EnvelopeDecodeError("no bytes");
  let value: unknown;
  try {
    value = DECODER.decode(bytes);
  } catch (e) {
    if (e instanceof EnvelopeDecodeError) throw e;
    throw new EnvelopeDecodeError(`malformed MsgPack (${(e as Error).message})`, { cause: e });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value) || isBytes(value)) {
    throw new EnvelopeDecodeError(`top level must be a map, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function isStandard(map: Record<string, unknown>): boolean {
  for (const key in map) if (key.length > 1) return true;
  return false;
}

function checkField(field: Field, kind: Kind, value: unknown): unknown {
  switch (kind) {
    case "string":
      if (typeof value === "string") return value;
      break;
    case "int":
      if (typeof value === "bigint") return Number(value);
      if (typeof value === "number" && Number.isInteger(value)) return value;
      break;
    case "float":
      if (typeof value === "number") return value;
      if (typeof value === "bigint") return Number(value);
      break;
    case "bytes":
      if (isBytes(value)) return value;
      break;
    case "strmap":
      if (isPlainMap(value)) {
        const out: Record<string, string> = {};
        for (const k in value) {
          const v = value[k];
          if (v === null || v === undefined) continue;
          if (typeof v === "object") {
            throw new EnvelopeDecodeError(`${field}.${k} must be a string, got ${describe(v)}`);
          }
          out[k] = String(v);
        }
        return out;
      }
      break;
    case "anymap":
      if (isPlainMap(value)) return fromWire(value);
      break;
    case "any":
      return fromWire(value);
  }
  throw new EnvelopeDecodeError(`field ${field} must be ${kind}, got ${describe(value)}`);
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !isBytes(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isBytes(v)) return "bytes";
  return typeof v === "object" ? "a map" : `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Decoded values: 64-bit integers that fit a JS number become numbers; the rest stay bigint. */
function fromWire(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(v)
      : v;
  }
  if (v === null || typeof v !== "object" || isBytes(v)) return v;
  if (Array.isArray(v)) return v.map(fromWire);
  const out: Record<string, unknown> = {};
  for (const k in v) out[k] = fromWire((v as Record<string, unknown>)[k]);
  return out;
}

/**
 * A value as MsgPack can carry it: Dates become ISO-8601 strings (as the reference does),
 * Maps become maps, Sets become lists, undefined map entries are left out, other objects keep
 * their own enumerable fields.
 */
export function toPlain(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (isBytes(v)) return v;
  if (v instanceof Date) return v.toISOString();
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Set) return [...v].map(toPlain);
  const out: Record<string, unknown> = {};
  const entries = v instanceof Map ? v.entries() : Object.entries(v);
  for (const [k, x] of entries) {
    if (x !== undefined && typeof x !== "function") out[String(k)] = toPlain(x);
  }
  return out;
}

/** A header value as the reference stores it: a string, without CR/LF. */
export function headerValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  const s = value instanceof Date ? value.toISOString() : String(value);
  return s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]/g, "") : s;
}

// ---- the fast path of toBytes/fromBytes (what the mesh runs per event) ----
//
// It writes and reads the envelope's fields directly instead of going through a plain map and
// the library's generic codec, and gives exactly the same bytes and envelopes as that path
// (tests/envelope_test.ts compares the two on random envelopes and mutated bytes). Decoding
// hands anything unusual (unknown or mixed keys, non-ASCII keys, nested values the fast reader
// does not take) back to the map-based path, which also produces the errors.

// Keys in the order the library writes a map built in FIELDS order: integer-like keys (most
// COMPACT keys) come first, ascending, as JavaScript enumerates them.
function keyOrder(keyIndex: 1 | 2): number[] {
  const probe: Record<string, number> = {};
  FIELDS.forEach((f, i) => (probe[f[keyIndex]] = i));
  return Object.keys(probe).map((k) => probe[k]);
}
const ORDER = { compact: keyOrder(1), standard: keyOrder(2) };
const KEY_BYTES = {
  compact: FIELDS.map((f) => ENCODER.encode(f[1])),
  standard: FIELDS.map((f) => ENCODER.encode(f[2])),
};
// COMPACT key character code -> field index; STANDARD key -> field index.
const COMPACT_INDEX = new Int8Array(128).fill(-1);
const STANDARD_INDEX = new Map<string, number>();
const IS_ADDRESS = FIELDS.map(([f]) => f === "to" || f === "from" || f === "replyTo");
FIELDS.forEach((f, i) => {
  COMPACT_INDEX[f[1].charCodeAt(0)] = i;
  STANDARD_INDEX.set(f[2], i);
});

let spareWriter: MsgPackWriter | undefined = new MsgPackWriter();

// By field index (FIELDS order); a switch keeps each property read monomorphic.
function fieldValue(e: EventEnvelope, i: number, format: WireFormat): unknown {
  switch (i) {
    case 0:
      return e.id;
    case 1:
      return e.to;
    case 2:
      return e.from;
    case 3:
      return e.replyTo;
    case 4:
      return e.traceId;
    case 5:
      return e.tracePath;
    case 6:
      return e.spanId;
    case 7:
      return e.correlationId;
    case 8:
      return peekTags(e);
    case 9:
      return peekAnnotations(e);
    case 10:
      return e.status;
    case 11:
      return format === "standard" ? e.headers : peekHeaders(e);
    case 12:
      return e.body;
    case 13:
      return e.exception;
    case 14:
      return e.stack;
    case 15:
      return e.type;
    case 16:
      return e.execTime;
    case 17:
      return e.roundTrip;
  }
}

function encode(e: EventEnvelope, format: WireFormat): Uint8Array {
  // Values are gathered (and bodies made plain, which may run user code) before writing.
  const values: unknown[] = new Array(FIELDS.length);
  let count = 0;
  for (let i = 0; i < FIELDS.length; i++) {
    let v = fieldValue(e, i, format);
    const kind = FIELDS[i][3];
    if (v === undefined || v === null) v = undefined;
    else if ((kind === "strmap" || kind === "anymap") && isEmpty(v as object)) {
      if (!(format === "standard" && i === HEADERS)) v = undefined;
    }
    if (v !== undefined && (kind === "any" || kind === "anymap")) v = toPlain(v);
    values[i] = v;
    if (v !== undefined) count++;
  }
  // A writer of its own for a nested call (a getter that encodes another envelope).
  const w = spareWriter ?? new MsgPackWriter();
  spareWriter = undefined;
  try {
    w.mapHeader(count);
    const keys = KEY_BYTES[format];
    for (const i of ORDER[format]) {
      const v = values[i];
      if (v === undefined) continue;
      w.raw(keys[i]);
      if (FIELDS[i][3] === "strmap") writeStrMap(w, v);
      else w.value(v);
    }
    return w.finish();
  } finally {
    w.pos = 0;
    spareWriter = w;
  }
}
const HEADERS = FIELDS.findIndex((f) => f[0] === "headers");

// As the library writes a plain object: own enumerable keys, undefined values left out.
function writeStrMap(w: MsgPackWriter, v: unknown): void {
  if (Object.getPrototypeOf(v) !== Object.prototype) return w.value(v);
  const map = v as Record<string, unknown>;
  const keys = Object.keys(map);
  let n = 0;
  for (const k of keys) if (map[k] !== undefined) n++;
  w.mapHeader(n);
  for (const k of keys) {
    const x = map[k];
    if (x === undefined) continue;
    w.str(k);
    w.value(x);
  }
}

function setField(e: EventEnvelope, i: number, v: unknown): void {
  switch (i) {
    case 0:
      e.id = v as string;
      return;
    case 1:
      e.to = v as string;
      return;
    case 2:
      e.from = v as string;
      return;
    case 3:
      e.replyTo = v as string;
      return;
    case 4:
      e.traceId = v as string;
      return;
    case 5:
      e.tracePath = v as string;
      return;
    case 6:
      e.spanId = v as string;
      return;
    case 7:
      e.correlationId = v as string;
      return;
    case 8:
      resetTags(e, v as Record<string, string>);
      return;
    case 9:
      e.annotations = v as Record<string, unknown>;
      return;
    case 10:
      e.status = (v as number) ?? 200;
      return;
    case 11:
      e.headers = v as Record<string, string>;
      return;
    case 12:
      e.body = v;
      return;
    case 13:
      e.exception = v as Uint8Array;
      return;
    case 14:
      e.stack = v as string;
      return;
    case 15:
      e.type = v as string;
      return;
    case 16:
      e.execTime = v as number;
      return;
    case 17:
      e.roundTrip = v as number;
      return;
  }
}

// A map of ASCII strings read directly; undefined (reader not moved) for anything else.
function readStrMap(r: MsgPackReader): Record<string, string> | undefined {
  const start = r.pos;
  const n = r.mapHeader(); // not moved when it is not a map
  if (n < 0) return undefined;
  const out: Record<string, string> = {};
  for (let j = 0; j < n; j++) {
    const k = r.ascii();
    const v = k === undefined || k === "__proto__" ? undefined : r.ascii();
    if (v === undefined) {
      r.pos = start;
      return undefined;
    }
    out[k!] = v;
  }
  return out;
}

// The envelope in `bytes`, or undefined when the map-based path has to decide.
function decodeFast(bytes: Uint8Array): EventEnvelope | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  try {
    const r = new MsgPackReader(bytes);
    const n = r.mapHeader();
    if (n < 0) return undefined;
    const e = new EventEnvelope();
    let standard: boolean | undefined;
    for (let j = 0; j < n; j++) {
      // Keys are all COMPACT or all STANDARD here; a mix is the map-based path's to sort out.
      let i: number;
      const c = r.char();
      if (c >= 0) {
        if (standard === true) return undefined;
        standard = false;
        i = COMPACT_INDEX[c];
      } else {
        const key = r.ascii();
        if (key === undefined || key.length < 2 || standard === false) return undefined;
        standard = true;
        i = STANDARD_INDEX.get(key) ?? -1;
      }
      if (i < 0) return undefined;
      if (r.nil()) {
        setField(e, i, undefined);
        continue;
      }
      const [field, , , kind] = FIELDS[i];
      let v: unknown;
      if (kind === "strmap") v = readStrMap(r) ?? checkField(field, kind, r.library());
      else if (kind === "anymap") v = checkField(field, kind, r.library());
      else {
        // Addresses repeat from event to event: the same string each time saves building it,
        // and the lookups keyed by it reuse its hash.
        v = IS_ADDRESS[i] ? r.internedAscii() ?? NONE : r.scalar();
        if (v === NONE) v = r.bin() ?? r.library();
        v = checkField(field, kind, v);
      }
      setField(e, i, v);
    }
    return r.pos === bytes.length ? e : undefined;
  } catch {
    return undefined;
  }
}
