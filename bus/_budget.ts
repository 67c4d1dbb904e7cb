// What decoding a MsgPack message may cost, checked before it is decoded.
//
// A MsgPack byte can stand for a whole map: 16 MiB of 0x80 decode to 16 M empty objects, about
// 1 GB of heap and seconds of CPU, and a map with a million keys takes V8 over a second to build
// (past ~1,000 properties it keeps a slow dictionary). Nesting a million levels deep decodes
// fine but overflows the stack of anything recursive that touches the value later. So before a
// message is decoded, one pass over its bytes, which allocates nothing and stops at the first
// excess, estimates the heap its value will take and how deep it nests.
import { EnvelopeDecodeError } from "./errors.ts";
import { SIZES } from "./_msgpack.ts";

/** What one decoded message may cost. */
export interface DecodeBudget {
  /** Maps and lists nested deeper than this are refused (`event.decode.max.depth`, 100). */
  maxDepth: number;
  /**
   * Estimated heap of the decoded value (`event.decode.max.bytes`, 40 MiB); about 90 ms of
   * decoding at most on this project's machine.
   */
  maxDecodedBytes: number;
}

/** The budget unless configuration says otherwise. */
export const DEFAULT_BUDGET: Readonly<DecodeBudget> = {
  maxDepth: 100,
  maxDecodedBytes: 40 * 1024 * 1024,
};

/** Messages this short cannot cost much: at most this many values, nested this deep. */
/**
 * The budget `config` sets for events from outside the process: `event.decode.max.depth` (100,
 * at least 1) and `event.decode.max.bytes` (40 MiB of estimated heap, at least 1 KiB).
 */
export function configuredBudget(
  config: { getNumber(key: string, fallback: number): number },
): DecodeBudget {
  return {
    maxDepth: Math.max(1, config.getNumber("event.decode.max.depth", DEFAULT_BUDGET.maxDepth)),
    maxDecodedBytes: Math.max(
      1024,
      config.getNumber("event.decode.max.bytes", DEFAULT_BUDGET.maxDecodedBytes),
    ),
  };
}

export const UNCHECKED_BYTES = 2048;

// Estimates of V8's heap per decoded value (measured with Deno 2.9 on x64, figures in
// docs/security.md): an object or array with its backing store, a slot in its
// parent, a string's header, a heap number or BigInt. A key of a map with more than LARGE_MAP
// entries costs about 1-2 µs to insert, so it is charged as 1 KiB.
const CONTAINER = 56;
const SLOT = 8;
const STRING = 40;
const BOXED = 16;
const VIEW = 72; // a Uint8Array over the message's own buffer
const LARGE_MAP = 1000;
const LARGE_MAP_KEY = 1024;

/**
 * Throws an {@link EnvelopeDecodeError} naming the limit when `bytes` would cost more than
 * `budget` to decode. Bytes that are not well-formed MsgPack pass: the decoder rejects them.
 */
export function checkBudget(bytes: Uint8Array, budget: DecodeBudget = DEFAULT_BUDGET): void {
  if (bytes.length <= UNCHECKED_BYTES) return;
  const { maxDepth, maxDecodedBytes } = budget;
  // Values still to read in each open map or list (a map of n entries holds 2n values), and
  // whether it is a map: its short keys cost only their slot (V8 shares them between objects).
  const open = new Float64Array(maxDepth + 1);
  const maps = new Uint8Array(maxDepth + 1);
  let depth = 0, cost = 0, pos = 0;
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (pos < n) {
    const t = bytes[pos++];
    let children = -1; // a map or list: how many values it holds
    let isMap = false;
    cost += SLOT;
    if (t < 0x80 || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) {
      if (t === 0xc1) return; // never used: not MsgPack, the decoder says so
    } else if (t <= 0x9f) {
      children = t & 0x0f;
      isMap = t <= 0x8f;
    } else if (t <= 0xbf) {
      const len = t & 0x1f;
      pos += len;
      const key = depth > 0 && maps[depth - 1] === 1 && open[depth - 1] % 2 === 0;
      if (len > 16 || !key) cost += STRING + len;
    } else {
      // The layout of the other types, as MsgPackReader.skip reads it.
      const [size, lengthBytes] = SIZES[t - 0xc4];
      if (pos + lengthBytes > n) return; // truncated: the decoder says so
      const len = lengthBytes === 1
        ? bytes[pos]
        : lengthBytes === 2
        ? view.getUint16(pos)
        : lengthBytes === 4
        ? view.getUint32(pos)
        : 0;
      pos += lengthBytes;
      if (t >= 0xdc) {
        children = len;
        isMap = t >= 0xde;
      } else {
        pos += size + (t >= 0xc7 && t <= 0xc9 ? len + 1 : len);
        if (t >= 0xd9) cost += STRING + len; // str8/16/32
        else if (t <= 0xc6) cost += VIEW; // bin8/16/32
        else if (t >= 0xca && t <= 0xd3 && size >= 4) cost += BOXED; // 32- and 64-bit numbers
      }
    }
    if (depth > 0) open[depth - 1]--;
    if (children >= 0) {
      cost += CONTAINER;
      if (isMap) {
        if (children > LARGE_MAP) cost += children * LARGE_MAP_KEY;
        children *= 2;
      }
      if (children > 0) {
        if (depth === maxDepth) throw over(`maps and lists nested over ${maxDepth} levels deep`);
        maps[depth] = isMap ? 1 : 0;
        open[depth++] = children;
      }
    }
    if (cost > maxDecodedBytes) {
      throw over(`its value would take over ${maxDecodedBytes} bytes once decoded`);
    }
    while (depth > 0 && open[depth - 1] === 0) depth--;
    if (depth === 0) return; // the top-level value is complete
  }
}

function over(why: string): EnvelopeDecodeError {
  return new EnvelopeDecodeError(`message too costly to decode: ${why}`);
}
