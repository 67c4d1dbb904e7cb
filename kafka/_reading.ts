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
import { RecentKeys } from "./_recent_keys.ts";
import { sameBytes } from "./_bytes.ts";

/** Keys a reader remembers: at most this, at least half (a retried produce lands within seconds). */
const RECENT_KEYS = 32_768;
/** Only keys this long are random enough to tell copies (the mesh's are 32 hex characters). */
const MIN_KEY_BYTES = 16;
const NO_KEY = new Uint8Array(0);

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
  /** Offset -> key of the last record of recent batches (insertion order: oldest first). */
  readonly #marks = new Map<number, Uint8Array>();
  readonly #maxMarks: number;
  readonly #recent = new RecentKeys(RECENT_KEYS);

  /**
   * @param marks How many batches' last keys to remember: one for a reader that resumes where it
   * stopped, more for one that may be sent back to an older commit (a few seconds' worth).
   */
  constructor(marks = 1) {
    this.#maxMarks = Math.max(1, marks);
  }

  /**
   * Where to fetch from after a break: the last record handled, so that its key can be
   * compared; else (nothing handled yet, or the log was replaced) `next`.
   */
  resumeAt(): number {
    return this.#marks.has(this.next - 1) ? this.next - 1 : this.next;
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
    for (const r of records) {
      const key = this.#marks.get(r.offset);
      if (key !== undefined) return sameBytes(r.key ?? NO_KEY, key) ? "same" : "replaced";
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
    this.#marks.clear();
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

  /**
   * A batch ended with the record at `offset` (handled or not): its key is remembered, as a
   * copy, since a view would keep the whole fetched response (up to 4 MiB) alive.
   */
  mark(offset: number, key: Uint8Array | null | undefined): void {
    if (offset + 1 > this.next) this.next = offset + 1;
    this.#marks.delete(offset);
    this.#marks.set(offset, key ? key.slice() : NO_KEY);
    if (this.#marks.size > this.#maxMarks) this.#marks.delete(this.#marks.keys().next().value!);
  }
}
