import { checkField, FIELDS, HEADERS, isEmpty, toPlain } from "./_envelope_fields.ts";
import type { EnvelopeFields as EventEnvelope, WireFormat } from "./_envelope_fields.ts";
import { ENCODER, MsgPackReader, MsgPackWriter, NONE } from "./_msgpack.ts";

/**
 * What the codec needs of the envelope class, which it does not import (the class imports the
 * codec): it works on the fields alone.
 */
export interface EnvelopeAccess {
  create(): EventEnvelope;
  peekAnnotations(e: EventEnvelope): Record<string, unknown> | undefined;
  peekHeaders(e: EventEnvelope): Record<string, string> | undefined;
  peekTags(e: EventEnvelope): Record<string, string> | undefined;
  resetTags(e: EventEnvelope, tags: Record<string, string> | undefined): void;
}

let create: EnvelopeAccess["create"];
let peekAnnotations: EnvelopeAccess["peekAnnotations"];
let peekHeaders: EnvelopeAccess["peekHeaders"];
let peekTags: EnvelopeAccess["peekTags"];
let resetTags: EnvelopeAccess["resetTags"];

/** Called once by the envelope class. */
export function bindEnvelope(access: EnvelopeAccess): void {
  ({ create, peekAnnotations, peekHeaders, peekTags, resetTags } = access);
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

export function encode(e: EventEnvelope, format: WireFormat): Uint8Array {
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
export function decodeFast(bytes: Uint8Array): EventEnvelope | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  try {
    const r = new MsgPackReader(bytes);
    const n = r.mapHeader();
    if (n < 0) return undefined;
    const e = create();
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

// The key set of the envelope in `bytes` from its keys alone (values are skipped, not decoded),
// or undefined when the map-based path has to decide.
export function formatFast(bytes: Uint8Array): WireFormat | undefined {
  try {
    const r = new MsgPackReader(bytes);
    let n = r.mapHeader();
    if (n < 0) return undefined;
    let standard = false;
    for (; n > 0; n--) {
      const key = r.ascii();
      if (key === undefined) return undefined;
      if (key.length > 1) standard = true;
      r.skip();
    }
    return r.pos === bytes.length ? (standard ? "standard" : "compact") : undefined;
  } catch {
    return undefined;
  }
}
