// The envelope's fields (the table in docs/wire.md, "Envelopes") and the map-based codec: plain
// maps in either key set to and from envelope fields, with the checks that make every decoding
// error an EnvelopeDecodeError naming the field. The fast binary codec (_envelope_binary.ts)
// hands anything unusual to this one.
import { EnvelopeDecodeError } from "./errors.ts";
import { DECODER } from "./_msgpack.ts";

/** The two key sets of the wire format: one-letter keys (mesh default) or field names. */
export type WireFormat = "compact" | "standard";

/** Fields accepted by the {@link EventEnvelope} constructor. */
export interface EnvelopeInit<B = unknown> {
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
  body?: B;
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

export type Field = keyof EnvelopeInit;

/** The envelope's fields as the binary codec reads and writes them (the class has them all). */
export type EnvelopeFields = { [K in Field]: EnvelopeInit[K] };
export type Kind = "string" | "int" | "float" | "strmap" | "anymap" | "bytes" | "any";

// [field, COMPACT key, STANDARD key, value kind]: the table in docs/wire.md.
// fieldValue and setField (the fast path, below) switch on these positions: keep them in step.
export const FIELDS: ReadonlyArray<readonly [Field, string, string, Kind]> = [
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
export const BY_KEY = new Map<string, readonly [Field, string, string, Kind]>();
for (const f of FIELDS) {
  BY_KEY.set(f[1], f);
  BY_KEY.set(f[2], f);
}

export function decodeMap(bytes: Uint8Array): Record<string, unknown> {
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

export function isStandard(map: Record<string, unknown>): boolean {
  for (const key in map) if (key.length > 1) return true;
  return false;
}

export function checkField(field: Field, kind: Kind, value: unknown): unknown {
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

export function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

export function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

export function isPlainMap(v: unknown): v is Record<string, unknown> {
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
 * A value as MsgPack can carry it: Dates become ISO-8601 strings (as the Java original does),
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

/** A header value as the Java original stores it: a string, without CR/LF. */
export function headerValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  const s = value instanceof Date ? value.toISOString() : String(value);
  return s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]/g, "") : s;
}

/** Index of the headers field in FIELDS. */
export const HEADERS: number = FIELDS.findIndex((f) => f[0] === "headers");
