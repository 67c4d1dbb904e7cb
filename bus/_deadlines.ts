// Request deadlines without a timer, or even a clock read, per request.
//
// Under Deno a timer per request costs about five times the whole in-memory request path, and
// a clock read a third of it. So requests are stamped with a generation number instead: one
// interval ticker (running only while deadlines are pending) closes a generation every
// TICK_MS and records the real time at which it closed. An entry from generation g was
// created before genEnd[g], so it is expired once `now - genEnd[g] >= timeout`: never early,
// and late by at most one tick (plus however long the event loop was blocked, as with any
// timer). Entries with the same timeout arrive in generation order, so one FIFO per distinct
// timeout keeps them sorted for free; settled entries are dropped lazily from the heads, and a
// FIFO is compacted when settled entries dominate it.
import { clearInterval, setInterval } from "node:timers";

/** Timer granularity of request timeouts, in ms. */
export const TICK_MS = 10;

/** One pending deadline. */
export interface Deadline {
  /** The generation the deadline was created in (set by the timer). */
  gen: number;
  /** Set once it is settled or expired; it then never expires (again). */
  settled: boolean;
  /** The timeout in ms, also the key of its FIFO. */
  readonly timeout: number;
  /** The FIFO holding it (set by the timer). */
  fifo: unknown;
  /** Called once when the timeout passes before the deadline is settled. */
  expire(): void;
}

// A FIFO over a reusable array: `tail` is its logical length, so emptying it keeps the
// capacity instead of re-growing the array on the next push.
export class Fifo {
  items: (Deadline | undefined)[] = [];
  head = 0;
  tail = 0;
  live = 0;

  push(d: Deadline): void {
    this.items[this.tail++] = d;
    this.live++;
  }

  /** The oldest unsettled entry, dropping settled ones before it. */
  peek(): Deadline | undefined {
    while (this.head < this.tail) {
      const d = this.items[this.head]!;
      if (!d.settled) return d;
      this.items[this.head++] = undefined;
    }
    this.head = this.tail = 0;
    return undefined;
  }

  /** One entry was settled: reset when none is left, compact when settled ones dominate. */
  settled(): void {
    if (--this.live === 0) {
      // A plain loop: Array.prototype.fill costs ~100 ns even for one slot.
      for (let i = this.head; i < this.tail; i++) this.items[i] = undefined;
      this.head = this.tail = 0;
    } else if (this.tail - this.head > 2048 && this.live * 4 < this.tail - this.head) {
      const keep = this.items.slice(this.head, this.tail).filter((d) => !d!.settled);
      this.items = keep;
      this.head = 0;
      this.tail = keep.length;
    }
  }
}

/** A set of deadlines served by one interval ticker. */
export class DeadlineTimer {
  #queues = new Map<number, Fifo>();
  #live = 0;
  #gen = 0;
  /** Real time (Date.now) at which each still-referenced generation closed. */
  #genEnd = new Map<number, number>();
  #ticker: ReturnType<typeof setInterval> | undefined;

  /** Number of deadlines neither settled nor expired. */
  get pending(): number {
    return this.#live;
  }

  /** Starts counting `d.timeout` for `d` from now. */
  add(d: Deadline): void {
    let q = this.#queues.get(d.timeout);
    if (q === undefined) {
      q = new Fifo();
      this.#queues.set(d.timeout, q);
    }
    d.fifo = q;
    d.gen = this.#gen;
    q.push(d);
    this.#live++;
    if (this.#ticker === undefined) this.#ticker = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Marks `d` settled so it never expires. Returns false if it was settled already. */
  settle(d: Deadline): boolean {
    if (d.settled) return false;
    d.settled = true;
    this.#live--;
    // Never a FIFO the ticker dropped: those hold only settled entries.
    (d.fifo as Fifo).settled();
    return true;
  }

  #tick(): void {
    const now = Date.now();
    this.#genEnd.set(this.#gen++, now);
    const due: Deadline[] = [];
    let oldest = this.#gen;
    for (const [timeout, q] of this.#queues) {
      for (let d = q.peek(); d !== undefined; d = q.peek()) {
        if (now - this.#genEnd.get(d.gen)! < timeout) {
          if (d.gen < oldest) oldest = d.gen;
          break;
        }
        d.settled = true;
        q.live--;
        this.#live--;
        due.push(d);
      }
      if (q.live === 0) this.#queues.delete(timeout);
    }
    for (const g of this.#genEnd.keys()) {
      if (g < oldest) this.#genEnd.delete(g);
      else break;
    }
    if (this.#live === 0 && this.#ticker !== undefined) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      this.#queues.clear();
    }
    for (const d of due) d.expire();
  }
}
