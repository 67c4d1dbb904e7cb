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
  const digest = (s: string | Uint8Array) => createHash("sha256").update(s).digest();
  const known = secrets.map(digest);
  return (given) => {
    if (given === undefined) return false;
    const d = digest(given);
    let ok = false;
    for (const k of known) ok = timingSafeEqual(k, d) || ok;
    return ok;
  };
}
