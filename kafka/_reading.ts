// How a partition reader keeps to one log, whichever client fetches for it: the same rules on
// both links (platformatic/reader.ts and kafkajs/reader.ts), so that they handle every record
// once and tell the same things apart.
//
// - Records of its own: another reader's start token (`_init_`) and loopback records are not
//   events (see `kindOf`).
// - Handled already: after a break, a reader may be given records again from before the last
//   one it handled (a resync fetch, or a rejoin resuming at its last commit): those are skipped.
// - Rewind or replaced log: those records are the same log only if a record at an offset handled
//   before still has the key it had (every record of the mesh has a fresh random key). Another
//   key, or that offset gone, means the topic was deleted and created again or the broker lost
//   its data: the log is read from its start.
// - Written twice: a produce tried again after its answer was lost writes its records twice, at
//   new offsets; a key seen within the last 16-32 K records is such a copy and is skipped.
import { INIT_HEADER, LOOPBACK_HEADER } from "./client.ts";
import { fingerprint, RecentKeys } from "./_recent_keys.ts";

/** Keys a reader remembers: at most this, at least half (a retried produce lands within seconds). */
const RECENT_KEYS = 32_768;
/** Only keys this long are random enough to tell copies (the mesh's are 32 hex characters). */
const MIN_KEY_BYTES = 16;
const NO_KEY = new Uint8Array(0);
const FP = new Int32Array(2);

/** What a record is to a reader. */
export type RecordKind = "event" | "init" | "loopback";

/** Whether a record is an event, a reader's start token, or a loopback record. */
export function kindOf(headers: Record<string, string>): RecordKind {
  return headers[INIT_HEADER] !== undefined
    ? "init"
    : headers[LOOPBACK_HEADER] !== undefined
    ? "loopback"
    : "event";
}

/** A record as the policy sees it: its offset and key. */
export interface Placed {
  readonly offset: number;
  readonly key: Uint8Array | null | undefined;
}

/** What a reader knows besides the records, when they do not say it (see {@link PartitionLog.judge}). */
export interface Evidence {
  /** The offset the fetch asked for: a record handled before, which must come back first. */
  asked?: number;
  /** The log's end (high watermark) and the last offset the broker confirmed committing (-1: none). */
  logEnd?: number;
  committed?: number;
}

/** The verdict on records given again after a break. */
export type Verdict = "same" | "replaced" | "unknown";

/** The reading state of one partition. */
export class PartitionLog {
  /** The next offset to handle; -1 before the reader knows where it starts. */
  next = -1;
  // The last record of recent batches, in a ring: its offset and its key's fingerprint (no
  // copy of the key, which would keep a fetched response alive; a Map of them cost a
  // microsecond a batch).
  readonly #offsets: Float64Array;
  readonly #h1: Int32Array;
  readonly #h2: Int32Array;
  #last = -1; // the slot written last
  #marked = 0;
  readonly #recent = new RecentKeys(RECENT_KEYS);

  /**
   * @param marks How many batches' last keys to remember: one for a reader that resumes where it
   * stopped, more for one that may be sent back to an older commit (a few seconds' worth).
   */
  constructor(marks = 1) {
    const n = Math.max(1, marks);
    this.#offsets = new Float64Array(n);
    this.#h1 = new Int32Array(n);
    this.#h2 = new Int32Array(n);
  }

  /**
   * Where to fetch from after a break: the last record handled, so that its key can be
   * compared; else (nothing handled yet, or the log was replaced) `next`.
   */
  resumeAt(): number {
    return this.#marked > 0 && this.#offsets[this.#last] === this.next - 1
      ? this.next - 1
      : this.next;
  }

  // The slot of a remembered offset, or -1.
  #slotOf(offset: number): number {
    const n = this.#offsets.length;
    for (let i = 0, at = this.#last; i < this.#marked; i++, at = (at - 1 + n) % n) {
      if (this.#offsets[at] === offset) return at;
    }
    return -1;
  }

  /**
   * Whether records given after a break (the first starting before {@link PartitionLog.next})
   * are the log handled so far: `same` when a record at a remembered offset has its key;
   * `replaced` when it has another, when the offset asked for (a remembered one) is not among
   * them (it is gone), or, for a reader with commits, when they start before the confirmed commit or the log
   * ends before what was handled while nothing was committed yet (after a kill -9 a broker first
   * reports a high watermark from a checkpoint seconds old); else `unknown`.
   */
  judge(records: readonly Placed[], evidence: Evidence = {}): Verdict {
    if (this.#marked > 0 && records.length > 0) {
      // Only offsets between the oldest and newest mark can be marked.
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < this.#marked; i++) {
        const o = this.#offsets[i];
        if (o < lo) lo = o;
        if (o > hi) hi = o;
      }
      for (const r of records) {
        if (r.offset < lo || r.offset > hi) continue;
        const at = this.#slotOf(r.offset);
        if (at < 0) continue;
        fingerprint(r.key ?? NO_KEY, FP);
        return FP[0] === this.#h1[at] && FP[1] === this.#h2[at] ? "same" : "replaced";
      }
    }
    const { asked, logEnd, committed } = evidence;
    // Asked for a remembered offset, given records without it: it is gone.
    if (asked !== undefined && records.length > 0) return "replaced";
    const first = records[0]?.offset;
    if (logEnd !== undefined && committed !== undefined && first !== undefined) {
      if ((committed < 0 && logEnd < this.next) || first < committed) return "replaced";
    }
    return "unknown";
  }

  /** The log was replaced: it is read again from its start. */
  replaced(): void {
    this.next = 0;
    this.#marked = 0;
    this.#last = -1;
  }

  /**
   * Whether the record at `offset` is to be handled: not before {@link PartitionLog.next}, and
   * not a copy of one handled within the last keys. A record taken moves `next` past it.
   */
  take(offset: number, key: Uint8Array | null | undefined): boolean {
    if (offset < this.next) return false;
    this.next = offset + 1;
    return key == null || key.length < MIN_KEY_BYTES || this.#recent.add(key);
  }

  /** A batch ended with the record at `offset` (handled or not): its key is remembered. */
  mark(offset: number, key: Uint8Array | null | undefined): void {
    if (offset + 1 > this.next) this.next = offset + 1;
    const n = this.#offsets.length;
    const at = this.#last = (this.#last + 1) % n;
    this.#offsets[at] = offset;
    fingerprint(key ?? NO_KEY, FP);
    this.#h1[at] = FP[0];
    this.#h2[at] = FP[1];
    if (this.#marked < n) this.#marked++;
  }
}
