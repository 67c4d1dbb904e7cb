// The table of pending requests by id. Ids are consecutive, so a ring of slots indexed by the id's
// low bits finds almost every request without hashing; a request still pending when the ring
// comes round to its slot again moves to an overflow Map, which stays empty unless many requests
// outlive tens of thousands of newer ones.
//
// Why not a Map alone: a Map that takes and drops an entry per request rehashes into a new table
// every few hundred requests, and under Node 24's V8 the obsolete tables, once promoted, kept their
// successors and the waiters in them alive through young-generation collections: the process
// spent about half its time collecting garbage (bench/node_bus_bench.ts). Deno was unaffected.

/** What the table holds: anything with its id. */
export interface Keyed {
  readonly id: number;
}

const INITIAL = 1024;

/** Pending requests by id (a positive integer, issued in increasing order). */
export class WaiterTable<W extends Keyed> {
  #slots: (W | undefined)[] = new Array(INITIAL).fill(undefined);
  #mask = INITIAL - 1;
  #overflow = new Map<number, W>();
  #size = 0;

  /** How many are pending. */
  get size(): number {
    return this.#size;
  }

  /** The pending entry with `id`, if any. */
  get(id: number): W | undefined {
    const w = this.#slots[id & this.#mask];
    if (w !== undefined && w.id === id) return w;
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  /** Adds `w` (its id not yet in the table). */
  add(w: W): void {
    this.#place(w);
    this.#size++;
    // Many requests outlive a ring of newer ones: a ring twice as large takes them back.
    if (this.#overflow.size > this.#slots.length) {
      const all = [...this.values()];
      this.#slots = new Array(this.#slots.length * 2).fill(undefined);
      this.#mask = this.#slots.length - 1;
      this.#overflow = new Map();
      for (const x of all) this.#place(x);
    }
  }

  // The newer of two entries for one slot keeps it; the older waits in the overflow.
  #place(w: W): void {
    const i = w.id & this.#mask;
    const old = this.#slots[i];
    if (old === undefined) this.#slots[i] = w;
    else if (old.id < w.id) {
      this.#overflow.set(old.id, old);
      this.#slots[i] = w;
    } else this.#overflow.set(w.id, w);
  }

  /** Removes the entry with `id`; false when there was none. */
  delete(id: number): boolean {
    const i = id & this.#mask;
    const w = this.#slots[i];
    if (w !== undefined && w.id === id) {
      this.#slots[i] = undefined;
      this.#size--;
      return true;
    }
    if (this.#overflow.delete(id)) {
      this.#size--;
      return true;
    }
    return false;
  }

  /**
   * Every pending entry (slots first, then the overflow). The ring is looked through only as
   * far as its last entry: a peer that leaves makes every member look for what waited on it, and
   * in a join storm, with nothing pending, that was a thousand empty slots per leave.
   */
  *values(): IterableIterator<W> {
    let left = this.#size - this.#overflow.size;
    for (let i = 0; left > 0 && i < this.#slots.length; i++) {
      const w = this.#slots[i];
      if (w === undefined) continue;
      left--;
      yield w;
    }
    yield* this.#overflow.values();
  }
}
