/**
 * Comparing a presented secret with configured ones in constant time: SHA-256 digests of equal
 * length are compared with `timingSafeEqual`, against every configured secret each time, so
 * that neither the length nor the position of a match shows in the time taken.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * A function telling whether `given` is one of `secrets`, in constant time.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { secretMatcher } from "./secrets.ts";
 * const matches = secretMatcher(["s3cret", "next"]);
 * assert.equal(matches("next"), true);
 * assert.equal(matches("guess"), false);
 * assert.equal(matches(undefined), false);
 * ```
 */
export function secretMatcher(
  secrets: readonly string[],
): (given: string | Uint8Array | undefined) => boolean {
  const index = secretIndex(secrets);
  return (given) => index(given) >= 0;
}

/**
 * A function giving the position of `given` in `secrets` (-1 when absent), in constant time:
 * which credential a client holds, for quotas per credential.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { secretIndex } from "./secrets.ts";
 * const indexOf = secretIndex(["s3cret", "next"]);
 * assert.equal(indexOf("next"), 1);
 * assert.equal(indexOf("guess"), -1);
 * ```
 */
export function secretIndex(
  secrets: readonly string[],
): (given: string | Uint8Array | undefined) => number {
  const digest = (s: string | Uint8Array) => createHash("sha256").update(s).digest();
  const known = secrets.map(digest);
  return (given) => {
    if (given === undefined) return -1;
    const d = digest(given);
    let found = -1;
    known.forEach((k, i) => {
      if (timingSafeEqual(k, d)) found = i;
    });
    return found;
  };
}
