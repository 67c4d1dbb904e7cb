// Event and inbox ids: 32 lowercase hex characters, like the Java original's hyphen-less UUIDs.
// A random per-process prefix plus a counter is unique and costs a fraction of randomUUID(),
// which matters because every request creates two envelopes.

const PREFIX = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
let counter = 0;

/** A new unique 32-hex id. */
export function nextId(): string {
  counter++;
  const hex = counter.toString(16);
  return PREFIX + "0000000000000000".slice(hex.length) + hex;
}

/** A random 32-hex id, for values that must not be guessable or ordered. */
export function randomHex32(): string {
  return crypto.randomUUID().replaceAll("-", "");
}
