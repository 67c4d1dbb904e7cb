// Strings to and from the Buffers of `@platformatic/kafka`'s records, on the per-record path.
// Under Deno, `Buffer.from(string)` costs about 0.5 µs and `buf.toString()` about 0.13 µs, and a
// mesh record has a key and two headers each way: keys and header values are ASCII (hex ids,
// origins), so they are copied into a shared slab, values that repeat (a recipient) are encoded
// once, and header names (a handful) are encoded and recognised once. Also the small byte helpers
// both links share (a `Buffer` view, a comparison without decoding).
import { Buffer } from "node:buffer";

const SLAB = 64 * 1024;
/** Longer strings go through `Buffer.from`: the slab is for keys and header values. */
const SHORT = 256;
let slab = Buffer.allocUnsafe(SLAB);
let slabAt = 0;

/**
 * The UTF-8 bytes of `s`. An ASCII string up to 256 characters is copied into a view of a shared
 * slab; slabs are never written twice, so a view stays valid as long as it is referenced.
 */
export function bytesOf(s: string): Buffer {
  const n = s.length;
  if (n > SHORT) return Buffer.from(s);
  if (slabAt + n > SLAB) {
    slab = Buffer.allocUnsafe(SLAB);
    slabAt = 0;
  }
  const start = slabAt;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return Buffer.from(s); // the slab's bytes written so far are not taken
    slab[start + i] = c;
  }
  slabAt = start + n;
  return slab.subarray(start, slabAt);
}

/** `b` as a `Buffer`: itself if it is one, otherwise a view of the same bytes (no copy). */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Whether `bytes` from `start` holds the same bytes as all of `b` (compared without decoding). */
export function sameBytes(
  b: Uint8Array,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): boolean {
  const n = b.length;
  if (end - start !== n) return false;
  let i = 0;
  while (i < n && b[i] === bytes[start + i]) i++;
  return i === n;
}

/** Header names, each encoded once; the names a reader sees most are recognised without decoding. */
export class HeaderNames {
  // A list, not a Map: the mesh writes two or three names, found by identity at once.
  readonly #known: [string, Buffer][] = [];
  readonly #max: number;

  /** Remembers at most `max` names (the mesh writes a handful). */
  constructor(max = 64) {
    this.#max = max;
  }

  /** The bytes of header name `name`. */
  encode(name: string): Buffer {
    for (const [n, b] of this.#known) if (n === name) return b;
    const b = Buffer.from(name);
    if (this.#known.length < this.#max) this.#known.push([name, b]);
    return b;
  }

  /** The header name in `bytes` (from `start` to `end`). */
  decode(bytes: Uint8Array, start = 0, end = bytes.length): string {
    for (const [name, b] of this.#known) if (sameBytes(b, bytes, start, end)) return name;
    return textOf(bytes.subarray(start, end));
  }
}

/** The header names this process's links write and read. */
export const HEADER_NAMES: HeaderNames = new HeaderNames();

/**
 * Header values, each encoded once while it repeats: a record's recipient (`_rx_`) is one of a few
 * origins. Short values only; when `max` are kept the cache starts again, so values seen once
 * (loopback nonces) never pile up.
 */
export class HeaderValues {
  #encoded = new Map<string, Buffer>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  /** The bytes of header value `value`. */
  encode(value: string): Buffer {
    let b = this.#encoded.get(value);
    if (b === undefined) {
      b = bytesOf(value);
      if (value.length <= 64) {
        if (this.#encoded.size >= this.#max) this.#encoded = new Map();
        this.#encoded.set(value, b);
      }
    }
    return b;
  }
}

const utf8 = new TextDecoder();

/** The UTF-8 text in `bytes` (a `Buffer` or any byte array). */
export function textOf(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

// The last short value decoded: a partition's records carry its reader's origin in `_rx_`.
let lastBytes = new Uint8Array(0);
let lastText = "";

/**
 * A header value (in `bytes` from `start` to `end`): a one-character ASCII value (the common
 * `"1"`) without a decoder call, the same short value as the last one without decoding it again.
 */
export function valueOf(
  bytes: Uint8Array | null | undefined,
  start = 0,
  end = bytes?.length ?? 0,
): string {
  if (bytes == null) return "";
  const n = end - start;
  if (n === 1 && bytes[start] < 0x80) return String.fromCharCode(bytes[start]);
  if (sameBytes(lastBytes, bytes, start, end)) return lastText;
  const view = bytes.subarray(start, end);
  const text = utf8.decode(view);
  if (n <= 64) {
    lastBytes = view.slice();
    lastText = text;
  }
  return text;
}
