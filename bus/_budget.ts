// What decoding a MsgPack message may cost, checked before it is decoded.
//
// A MsgPack byte can stand for a whole map: 16 MiB of 0x80 decode to 16 M empty objects, about
// 1 GB of heap and seconds of CPU, and a map with a million keys takes V8 over a second to build
// (past ~1,000 properties it keeps a slow dictionary). Nesting a million levels deep decodes
// fine but overflows the stack of anything recursive that touches the value later. So before a
// message is decoded, one pass over its bytes, which allocates nothing and stops at the first
// excess, estimates the heap its value will take and how deep it nests.
import { EnvelopeDecodeError } from "./errors.ts";

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
  let depth = 0;
  let cost = 0;
  let pos = 0;
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (;;) {
    if (pos >= n) return;
    const b = bytes[pos++];
    let children = -1; // a map or list: how many values it holds
    let skip = 0; // payload bytes after the header
    let isMap = false;
    cost += SLOT;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // a fixint, nil or a boolean
    } else if (b <= 0x8f) {
      children = b & 0x0f;
      isMap = true;
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
      if (skip > 16 || depth === 0 || maps[depth - 1] === 0 || open[depth - 1] % 2 === 1) {
        cost += STRING + skip;
      }
    } else {
      if (pos + 4 > n && b !== 0xcc && b !== 0xd0 && b !== 0xd4) return;
      switch (b) {
        case 0xc4:
        case 0xd9:
          skip = bytes[pos++];
          break;
        case 0xc5:
        case 0xda:
          skip = view.getUint16(pos);
          pos += 2;
          break;
        case 0xc6:
        case 0xdb:
          skip = view.getUint32(pos);
          pos += 4;
          break;
        case 0xc7:
          skip = bytes[pos] + 1;
          pos += 1;
          break;
        case 0xc8:
          skip = view.getUint16(pos) + 1;
          pos += 2;
          break;
        case 0xc9:
          skip = view.getUint32(pos) + 1;
          pos += 4;
          break;
        case 0xca:
        case 0xd2:
          skip = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
          skip = 4;
          break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          skip = (1 << (b - 0xd4)) + 1;
          break;
        case 0xdc:
          children = view.getUint16(pos);
          pos += 2;
          break;
        case 0xdd:
          children = view.getUint32(pos);
          pos += 4;
          break;
        case 0xde:
          children = view.getUint16(pos);
          pos += 2;
          isMap = true;
          break;
        case 0xdf:
          children = view.getUint32(pos);
          pos += 4;
          isMap = true;
          break;
        default:
          return; // 0xc1 is never used: not MsgPack
      }
      if (b === 0xd9 || b === 0xda || b === 0xdb) cost += STRING + skip;
      else if (b === 0xc4 || b === 0xc5 || b === 0xc6) cost += VIEW;
      else if (b === 0xca || b === 0xcb || b === 0xce || b === 0xcf || b === 0xd2 || b === 0xd3) {
        cost += BOXED;
      }
    }
    pos += skip;
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
