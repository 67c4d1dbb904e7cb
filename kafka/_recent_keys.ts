// The keys of the records a partition reader handled last, to skip a record written twice (a
// produce tried again after its answer was lost). Every record of the mesh has a fresh random key,
// so a key seen again within the window is such a copy.
//
// Keys are remembered as 64-bit fingerprints (two independent 32-bit hashes of the key's bytes) in
// open-addressing tables of typed arrays: under Deno a Set of key strings cost about 1 µs per
// record (and the string itself another 0.2), this about 0.15. Two fingerprints of different keys
// are equal with a probability of about 2^-64 per pair: with at most 32,768 remembered keys, one
// wrongly skipped record in some 10^15.

/** Remembers the fingerprints of the last keys: at most `size`, at least half as many. */
export class RecentKeys {
  #current: Table;
  #previous: Table;
  readonly #half: number;

  constructor(size: number) {
    this.#half = Math.max(1, size >> 1);
    // Tables twice the entries they hold, so that a probe ends soon.
    let capacity = 2;
    while (capacity < this.#half * 2) capacity *= 2;
    this.#current = new Table(capacity);
    this.#previous = new Table(capacity);
  }

  /** Remembers the key in `bytes`; false when it was remembered already. */
  add(bytes: Uint8Array): boolean {
    fingerprint(bytes, FP);
    const h1 = FP[0], h2 = FP[1];
    if (this.#current.has(h1, h2) || this.#previous.has(h1, h2)) return false;
    if (this.#current.size >= this.#half) {
      const older = this.#previous;
      older.clear();
      this.#previous = this.#current;
      this.#current = older;
    }
    this.#current.add(h1, h2);
    return true;
  }
}

const FP = new Int32Array(2);

/**
 * The 64-bit fingerprint of a key's bytes, as two 32-bit hashes written to `out` (the first is
 * never 0, which marks an empty slot).
 */
export function fingerprint(bytes: Uint8Array, out: Int32Array): void {
  let h1 = 0x811c9dc5 | 0; // FNV-1a
  let h2 = 0x9747b28c | 0; // a multiply-xorshift of its own
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    h1 = Math.imul(h1 ^ b, 16777619);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h1 = mix(h1 ^ bytes.length);
  h2 = mix(h2 ^ bytes.length);
  out[0] = h1 === 0 ? 1 : h1;
  out[1] = h2;
}

// Murmur3's finaliser: every input bit changes about half the output bits.
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

class Table {
  readonly #h1: Int32Array;
  readonly #h2: Int32Array;
  readonly #mask: number;
  size = 0;

  constructor(capacity: number) {
    this.#h1 = new Int32Array(capacity);
    this.#h2 = new Int32Array(capacity);
    this.#mask = capacity - 1;
  }

  has(h1: number, h2: number): boolean {
    for (let i = h1 & this.#mask;; i = (i + 1) & this.#mask) {
      const a = this.#h1[i];
      if (a === 0) return false;
      if (a === h1 && this.#h2[i] === h2) return true;
    }
  }

  add(h1: number, h2: number): void {
    let i = h1 & this.#mask;
    while (this.#h1[i] !== 0) i = (i + 1) & this.#mask;
    this.#h1[i] = h1;
    this.#h2[i] = h2;
    this.size++;
  }

  clear(): void {
    this.#h1.fill(0);
    this.size = 0;
  }
}
