// The MsgPack primitives of the envelope's fast path (see `envelope.ts`): a writer for the
// envelope's fixed fields and a reader that walks a map without building it. Both produce
// exactly what @msgpack/msgpack does for the same values; anything else (nested maps, lists,
// non-ASCII strings, 64-bit integers...) goes to that library.
//
// Why not the library alone: encoding an envelope through a plain map and decoding it back
// into one cost ~4.8 µs per request on this project's machine, most of a mesh request's own
// CPU; the fast path skips the intermediate maps and the library's generic dispatch.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { EnvelopeDecodeError } from "./errors.ts";

/** The library's codec, configured as the envelope needs it. */
export const ENCODER: Encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
/** The library's decoder; map keys must be strings. */
export const DECODER: Decoder = new Decoder({
  useBigInt64: true,
  mapKeyConverter(key: unknown): string {
    if (typeof key !== "string") {
      throw new EnvelopeDecodeError(`map keys must be strings, got ${typeof key} ${String(key)}`);
    }
    return key;
  },
});

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const F32 = new Float32Array(1);
const F32_BYTES = new Uint8Array(F32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const SLAB = 16 * 1024;
const POOLED = 1024;
let slab = new Uint8Array(SLAB);
let slabUsed = 0;

/** Appends MsgPack values to a growing buffer. */
export class MsgPackWriter {
  bytes: Uint8Array = new Uint8Array(1024);
  pos = 0;

  #ensure(n: number): void {
    if (this.pos + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
  }

  /**
   * A copy of what was written; the writer starts over. Small results are views into a shared
   * slab, as Node pools small Buffers: a fresh ArrayBuffer costs ~0.7 µs in Deno, a view ~0.05.
   */
  finish(): Uint8Array {
    const n = this.pos;
    this.pos = 0;
    if (n > POOLED) {
      const out = this.bytes.slice(0, n);
      if (this.bytes.length > 65536) this.bytes = new Uint8Array(1024); // do not pin a big event
      return out;
    }
    if (slabUsed + n > slab.length) {
      slab = new Uint8Array(SLAB);
      slabUsed = 0;
    }
    const out = slab.subarray(slabUsed, slabUsed + n);
    out.set(this.bytes.subarray(0, n));
    slabUsed += (n + 7) & ~7;
    return out;
  }

  /** Bytes that are MsgPack already (such as a constant key). */
  raw(b: Uint8Array): void {
    const n = b.length;
    this.#ensure(n);
    if (n <= 16) { for (let i = 0; i < n; i++) this.bytes[this.pos + i] = b[i]; }
    else this.bytes.set(b, this.pos);
    this.pos += n;
  }

  #u32(n: number): void {
    const b = this.bytes, p = this.pos;
    b[p] = n >>> 24;
    b[p + 1] = n >>> 16;
    b[p + 2] = n >>> 8;
    b[p + 3] = n;
    this.pos = p + 4;
  }

  #u16(n: number): void {
    this.bytes[this.pos++] = n >>> 8;
    this.bytes[this.pos++] = n;
  }

  /** A map header for `n` entries. */
  mapHeader(n: number): void {
    this.#ensure(5);
    if (n < 16) this.bytes[this.pos++] = 0x80 | n;
    else if (n < 0x10000) {
      this.bytes[this.pos++] = 0xde;
      this.#u16(n);
    } else {
      this.bytes[this.pos++] = 0xdf;
      this.#u32(n);
    }
  }

  /** A string (ASCII written here, anything else by the library). */
  str(s: string): void {
    const n = s.length;
    const head = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    this.#ensure(head + n);
    const b = this.bytes, at = this.pos + head;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return this.#library(s);
      b[at + i] = c;
    }
    if (head === 1) b[this.pos++] = 0xa0 | n;
    else if (head === 2) {
      b[this.pos++] = 0xd9;
      b[this.pos++] = n;
    } else if (head === 3) {
      b[this.pos++] = 0xda;
      this.#u16(n);
    } else {
      b[this.pos++] = 0xdb;
      this.#u32(n);
    }
    this.pos += n;
  }

  /** A number, as the library writes it: integers in the smallest form, others as float64. */
  num(v: number): void {
    this.#ensure(9);
    const b = this.bytes;
    if (Number.isSafeInteger(v) && v >= -0x80000000 && v < 0x100000000) {
      if (v >= 0) {
        if (v < 0x80) b[this.pos++] = v;
        else if (v < 0x100) {
          b[this.pos++] = 0xcc;
          b[this.pos++] = v;
        } else if (v < 0x10000) {
          b[this.pos++] = 0xcd;
          this.#u16(v);
        } else {
          b[this.pos++] = 0xce;
          this.#u32(v);
        }
      } else if (v >= -0x20) b[this.pos++] = 0xe0 | (v + 0x20);
      else if (v >= -0x80) {
        b[this.pos++] = 0xd0;
        b[this.pos++] = v;
      } else if (v >= -0x8000) {
        b[this.pos++] = 0xd1;
        this.#u16(v);
      } else {
        b[this.pos++] = 0xd2;
        this.#u32(v);
      }
      return;
    }
    // Beyond 32 bits the library (with useBigInt64) also writes a float64.
    b[this.pos++] = 0xcb;
    F64[0] = v;
    for (let i = 0; i < 8; i++) b[this.pos++] = F64_BYTES[LITTLE_ENDIAN ? 7 - i : i];
  }

  /** Bytes as a MsgPack bin. */
  bin(v: Uint8Array): void {
    const n = v.length;
    this.#ensure(5 + n);
    if (n < 0x100) {
      this.bytes[this.pos++] = 0xc4;
      this.bytes[this.pos++] = n;
    } else if (n < 0x10000) {
      this.bytes[this.pos++] = 0xc5;
      this.#u16(n);
    } else {
      this.bytes[this.pos++] = 0xc6;
      this.#u32(n);
    }
    this.bytes.set(v, this.pos);
    this.pos += n;
  }

  /** Any value (already plain): common scalars here, the rest by the library. */
  value(v: unknown): void {
    switch (typeof v) {
      case "string":
        return this.str(v);
      case "number":
        return this.num(v);
      case "boolean":
        this.#ensure(1);
        this.bytes[this.pos++] = v ? 0xc3 : 0xc2;
        return;
      case "undefined":
        this.#ensure(1);
        this.bytes[this.pos++] = 0xc0;
        return;
    }
    if (v === null) {
      this.#ensure(1);
      this.bytes[this.pos++] = 0xc0;
    } else if (v instanceof Uint8Array) this.bin(v);
    else this.#library(v);
  }

  #library(v: unknown): void {
    this.raw(ENCODER.encodeSharedRef(v));
  }
}

/** Reads MsgPack values from `bytes` at `pos`, for the fast path of decoding an envelope. */
export class MsgPackReader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  #u16(p: number): number {
    return (this.bytes[p] << 8) | this.bytes[p + 1];
  }

  #u32(p: number): number {
    const b = this.bytes;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** Entries of the map that starts here (and moves past its header), or -1 if not a map. */
  mapHeader(): number {
    const b = this.bytes, p = this.pos, t = b[p];
    if (t >= 0x80 && t <= 0x8f) {
      this.pos = p + 1;
      return t & 0x0f;
    }
    if (t === 0xde && p + 3 <= b.length) {
      this.pos = p + 3;
      return this.#u16(p + 1);
    }
    if (t === 0xdf && p + 5 <= b.length) {
      this.pos = p + 5;
      return this.#u32(p + 1);
    }
    return -1;
  }

  /** Byte length of the string that starts here (its bytes begin at #start); -1 if none. */
  #strSpan(): number {
    const t = this.bytes[this.pos];
    if (t >= 0xa0 && t <= 0xbf) {
      const n = t & 0x1f;
      if (this.pos + 1 + n > this.bytes.length) return -1;
      this.#start = this.pos + 1;
      return n;
    }
    return this.#span(0xd9);
  }

  /**
   * Byte length of the str or bin here whose 8-, 16- and 32-bit length forms have the type
   * bytes `first`, `first + 1` and `first + 2` (its bytes begin at #start); -1 if none.
   */
  #span(first: number): number {
    const b = this.bytes, p = this.pos, t = b[p];
    let n: number, start: number;
    if (t === first) {
      n = b[p + 1];
      start = p + 2;
    } else if (t === first + 1) {
      n = this.#u16(p + 1);
      start = p + 3;
    } else if (t === first + 2) {
      n = this.#u32(p + 1);
      start = p + 5;
    } else return -1;
    if (!(n >= 0) || start + n > b.length) return -1; // a length read past the end is undefined
    this.#start = start;
    return n;
  }
  #start = 0;

  /** The ASCII string that starts here (and moves past it), or undefined (not moved). */
  ascii(): string | undefined {
    const n = this.#strSpan();
    if (n < 0) return undefined;
    const b = this.bytes, start = this.#start;
    let s = "";
    if (n <= 24) {
      for (let i = start; i < start + n; i++) {
        const c = b[i];
        if (c > 0x7f) return undefined;
        s += String.fromCharCode(c);
      }
    } else {
      for (let i = start; i < start + n; i++) if (b[i] > 0x7f) return undefined;
      s = ASCII.decode(b.subarray(start, start + n));
    }
    this.pos = start + n;
    return s;
  }

  /**
   * As {@link MsgPackReader.ascii}, but a string read recently with the same bytes is returned
   * as that same string (from a small cache keyed by a hash of the bytes).
   */
  internedAscii(): string | undefined {
    const n = this.#strSpan();
    if (n < 0 || n > 128) return this.ascii();
    const b = this.bytes, start = this.#start, end = start + n;
    let h = n;
    for (let i = start; i < end; i++) {
      const c = b[i];
      if (c > 0x7f) return undefined;
      h = Math.imul(h ^ c, 16777619);
    }
    const slot = (h >>> 0) & (INTERNED.length - 1);
    const cached = INTERNED[slot];
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached.charCodeAt(i) === b[start + i]) i++;
      if (i === n) {
        this.pos = end;
        return cached;
      }
    }
    const s = this.ascii();
    if (s !== undefined) INTERNED[slot] = s;
    return s;
  }

  /**
   * A one-character ASCII string here (a COMPACT key): its character code, moving past it; -1
   * (not moved) for anything else.
   */
  char(): number {
    const b = this.bytes, p = this.pos;
    if (b[p] !== 0xa1 || p + 2 > b.length || b[p + 1] > 0x7f) return -1;
    this.pos = p + 2;
    return b[p + 1];
  }

  /** True (moving past it) when a nil is here. */
  nil(): boolean {
    if (this.bytes[this.pos] !== 0xc0) return false;
    this.pos++;
    return true;
  }

  /**
   * A scalar here that needs no library: an integer of up to 32 bits, a float64, a boolean or
   * an ASCII string; `NONE` (not moved) for anything else.
   */
  scalar(): unknown {
    const b = this.bytes, p = this.pos, t = b[p];
    if (t < 0x80) {
      this.pos = p + 1;
      return t;
    }
    if (t >= 0xe0) {
      this.pos = p + 1;
      return t - 0x100;
    }
    if (t >= 0xa0 && t <= 0xbf || t === 0xd9) return this.ascii() ?? NONE;
    switch (t) {
      case 0xc2:
        this.pos = p + 1;
        return false;
      case 0xc3:
        this.pos = p + 1;
        return true;
      case 0xcc:
        if (p + 2 > b.length) return NONE;
        this.pos = p + 2;
        return b[p + 1];
      case 0xcd:
        if (p + 3 > b.length) return NONE;
        this.pos = p + 3;
        return this.#u16(p + 1);
      case 0xce:
        if (p + 5 > b.length) return NONE;
        this.pos = p + 5;
        return this.#u32(p + 1);
      case 0xd0:
        if (p + 2 > b.length) return NONE;
        this.pos = p + 2;
        return (b[p + 1] << 24) >> 24;
      case 0xd1:
        if (p + 3 > b.length) return NONE;
        this.pos = p + 3;
        return (this.#u16(p + 1) << 16) >> 16;
      case 0xd2:
        if (p + 5 > b.length) return NONE;
        this.pos = p + 5;
        return this.#u32(p + 1) | 0;
      case 0xca:
        if (p + 5 > b.length) return NONE;
        for (let i = 0; i < 4; i++) F32_BYTES[LITTLE_ENDIAN ? 3 - i : i] = b[p + 1 + i];
        this.pos = p + 5;
        return F32[0];
      case 0xcb:
        if (p + 9 > b.length) return NONE;
        for (let i = 0; i < 8; i++) F64_BYTES[LITTLE_ENDIAN ? 7 - i : i] = b[p + 1 + i];
        this.pos = p + 9;
        return F64[0];
    }
    return NONE;
  }

  /** The bin here as a view of the input (as the library returns it), or undefined. */
  bin(): Uint8Array | undefined {
    const n = this.#span(0xc4);
    if (n < 0) return undefined;
    this.pos = this.#start + n;
    return this.bytes.subarray(this.#start, this.pos);
  }

  /**
   * The value here decoded by the library (which checks it fully), moving past it.
   *
   * @throws {Error} When the bytes are not well-formed MsgPack.
   */
  library(): unknown {
    const start = this.pos;
    this.skip();
    return DECODER.decode(this.bytes.subarray(start, this.pos));
  }

  /**
   * Moves past the value here without decoding it (its nested values too).
   *
   * @throws {RangeError} When the value runs past the end or uses the reserved byte 0xc1.
   */
  skip(): void {
    const b = this.bytes;
    let p = this.pos;
    for (let left = 1; left > 0; left--) {
      if (p >= b.length) throw new RangeError("truncated MsgPack");
      const t = b[p];
      if (t < 0x80 || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) {
        if (t === 0xc1) throw new RangeError("reserved byte 0xc1");
        p += 1;
      } else if (t <= 0x8f) {
        left += 2 * (t & 0x0f);
        p += 1;
      } else if (t <= 0x9f) {
        left += t & 0x0f;
        p += 1;
      } else if (t <= 0xbf) p += 1 + (t & 0x1f);
      else {
        const [size, lengthBytes] = SIZES[t - 0xc4];
        if (p + 1 + lengthBytes > b.length) throw new RangeError("truncated MsgPack");
        const n = lengthBytes === 1
          ? b[p + 1]
          : lengthBytes === 2
          ? this.#u16(p + 1)
          : lengthBytes === 4
          ? this.#u32(p + 1)
          : 0;
        p += 1 + lengthBytes;
        if (t === 0xdc || t === 0xdd) left += n;
        else if (t === 0xde || t === 0xdf) left += 2 * n;
        else p += size + (t >= 0xc7 && t <= 0xc9 ? n + 1 : n);
      }
    }
    if (p > b.length) throw new RangeError("truncated MsgPack");
    this.pos = p;
  }
}

/** Returned by {@link MsgPackReader.scalar} when the value is not a simple scalar. */
export const NONE: unique symbol = Symbol("none");

const ASCII = new TextDecoder();
const INTERNED: (string | undefined)[] = new Array(512).fill(undefined);

/**
 * For type bytes 0xc4..0xdf: [fixed payload size, length field bytes]. Lengths are added for
 * bin/str/ext; array and map counts are handled by the caller (here and in `_budget.ts`).
 */
export const SIZES: ReadonlyArray<readonly [number, number]> = [
  [0, 1], // c4 bin8
  [0, 2], // c5 bin16
  [0, 4], // c6 bin32
  [0, 1], // c7 ext8 (+1 type byte)
  [0, 2], // c8 ext16 (+1 type byte)
  [0, 4], // c9 ext32 (+1 type byte)
  [4, 0], // ca float32
  [8, 0], // cb float64
  [1, 0], // cc uint8
  [2, 0], // cd uint16
  [4, 0], // ce uint32
  [8, 0], // cf uint64
  [1, 0], // d0 int8
  [2, 0], // d1 int16
  [4, 0], // d2 int32
  [8, 0], // d3 int64
  [2, 0], // d4 fixext1 (type + 1)
  [3, 0], // d5 fixext2
  [5, 0], // d6 fixext4
  [9, 0], // d7 fixext8
  [17, 0], // d8 fixext16
  [0, 1], // d9 str8
  [0, 2], // da str16
  [0, 4], // db str32
  [0, 2], // dc array16
  [0, 4], // dd array32
  [0, 2], // de map16
  [0, 4], // df map32
];
