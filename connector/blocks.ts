/**
 * Large events in blocks (docs/wire.md, "Records on Kafka"): an event whose bytes exceed 65,280 is
 * sent as numbered block envelopes `{id, headers {_id_, _blk_, _max_}, body: chunk}` with no
 * `to`, all to the same destination, and put back together on arrival. A set that does not
 * complete within its time to live is dropped and reported. Incomplete sets are capped in number
 * and in bytes: past either cap the oldest sets are dropped and reported, so blocks that never
 * complete cannot fill the memory.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";

/** The largest serialised event sent in one record (websocket.binary.size 65536 - 256). */
export const MAX_BLOCK = 65_280;

/** Splits serialised event bytes into block envelopes (one when they fit). */
export function toBlocks(eventId: string, bytes: Uint8Array, max = MAX_BLOCK): EventEnvelope[] {
  const total = Math.ceil(bytes.length / max);
  const blocks: EventEnvelope[] = [];
  for (let i = 0; i < total; i++) {
    blocks.push(
      new EventEnvelope({
        headers: { _id_: eventId, _blk_: String(i + 1), _max_: String(total) },
        body: bytes.subarray(i * max, Math.min(bytes.length, (i + 1) * max)),
      }),
    );
  }
  return blocks;
}

/** Whether an envelope is a block: no `to`, and only `_x_`-style headers. */
export function isBlock(e: EventEnvelope): boolean {
  if (e.to !== undefined) return false;
  const keys = Object.keys(e.headers);
  return keys.length > 0 && keys.every((k) => k.length > 2 && k.startsWith("_") && k.endsWith("_"));
}

interface Pending {
  chunks: (Uint8Array | undefined)[];
  received: number;
  size: number;
  expires: number;
}

/** Limits of a {@link BlockAssembler}. */
export interface BlockLimits {
  /** How long an incomplete set is kept, in ms (60,000). */
  ttlMs?: number;
  /** The largest event accepted, in bytes (64 MiB); a set announcing or holding more is refused. */
  maxBytes?: number;
  /** Incomplete sets held at once (100, `block.max.pending.sets`). */
  maxSets?: number;
  /** Bytes held in incomplete sets at once (128 MiB, `block.max.pending.bytes`). */
  maxPendingBytes?: number;
}

/** A block set dropped before it completed: its id, the blocks it had and the blocks it needed. */
export type DroppedSet = [id: string, received: number, total: number];

/** What came of adding a block. */
export type BlockResult =
  | { kind: "partial"; dropped: DroppedSet[] }
  | { kind: "complete"; bytes: Uint8Array }
  | { kind: "invalid"; reason: string };

/** Block sets being put back together. */
export class BlockAssembler {
  // In insertion order, so the first entry is the oldest set.
  readonly #sets = new Map<string, Pending>();
  readonly #ttl: number;
  readonly #maxBytes: number;
  readonly #maxSets: number;
  readonly #maxPendingBytes: number;
  #pendingBytes = 0;

  /** Creates an empty assembler with these limits. */
  constructor(limits: BlockLimits = {}) {
    this.#ttl = limits.ttlMs ?? 60_000;
    this.#maxBytes = limits.maxBytes ?? 64 * 1024 * 1024;
    this.#maxSets = limits.maxSets ?? 100;
    this.#maxPendingBytes = limits.maxPendingBytes ?? 128 * 1024 * 1024;
  }

  /** Incomplete sets held now. */
  get pending(): number {
    return this.#sets.size;
  }

  /** Bytes held in incomplete sets now. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Adds one block. */
  add(block: EventEnvelope, now: number): BlockResult {
    const h = block.headers;
    const id = h._id_, n = Number(h._blk_), max = Number(h._max_);
    if (!id) return { kind: "invalid", reason: "block without _id_" };
    if (!Number.isInteger(max) || max < 1 || max * MAX_BLOCK > this.#maxBytes + MAX_BLOCK) {
      return { kind: "invalid", reason: `block set ${id} has a bad _max_ ${h._max_}` };
    }
    if (!Number.isInteger(n) || n < 1 || n > max) {
      return { kind: "invalid", reason: `block ${h._blk_} of set ${id} is out of 1..${max}` };
    }
    if (!(block.body instanceof Uint8Array)) {
      return { kind: "invalid", reason: `block ${n} of set ${id} has no bytes` };
    }
    const body = block.body;
    if (body.length > this.#maxPendingBytes) {
      return { kind: "invalid", reason: `block ${n} of set ${id} is over the pending-bytes cap` };
    }
    let set = this.#sets.get(id);
    if (set === undefined) {
      set = { chunks: new Array(max), received: 0, size: 0, expires: now + this.#ttl };
      this.#sets.set(id, set);
    }
    if (set.chunks.length !== max) {
      return { kind: "invalid", reason: `block ${n} of set ${id} disagrees on _max_ (${max})` };
    }
    if (set.chunks[n - 1] !== undefined) {
      return { kind: "invalid", reason: `duplicate block ${n} of set ${id}` };
    }
    if (set.size + body.length > this.#maxBytes) {
      this.#remove(id, set);
      return { kind: "invalid", reason: `block set ${id} is over ${this.#maxBytes} bytes` };
    }
    set.chunks[n - 1] = body;
    set.received++;
    set.size += body.length;
    this.#pendingBytes += body.length;
    if (set.received < max) return { kind: "partial", dropped: this.#enforceCaps(id) };
    this.#remove(id, set);
    const bytes = new Uint8Array(set.size);
    let at = 0;
    for (const c of set.chunks) {
      bytes.set(c!, at);
      at += c!.length;
    }
    return { kind: "complete", bytes };
  }

  /** Drops sets past their time to live; returns their ids with the blocks they had. */
  expire(now: number): DroppedSet[] {
    const gone: DroppedSet[] = [];
    for (const [id, set] of this.#sets) {
      if (set.expires <= now) {
        this.#remove(id, set);
        gone.push([id, set.received, set.chunks.length]);
      }
    }
    return gone;
  }

  #remove(id: string, set: Pending): void {
    this.#sets.delete(id);
    this.#pendingBytes -= set.size;
  }

  // Drops the oldest sets (never `keep`, the one just added to) while over a cap.
  #enforceCaps(keep: string): DroppedSet[] {
    const dropped: DroppedSet[] = [];
    for (const [id, set] of this.#sets) {
      if (this.#sets.size <= this.#maxSets && this.#pendingBytes <= this.#maxPendingBytes) break;
      if (id === keep) continue;
      this.#remove(id, set);
      dropped.push([id, set.received, set.chunks.length]);
    }
    return dropped;
  }
}
