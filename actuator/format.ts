/**
 * Text forms used by the actuator endpoints.
 *
 * @module
 */

const UNITS: [string, number][] = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
  ["second", 1_000],
];

/**
 * A duration as the reference writes it: `25 minutes 12 seconds`, `1 hour 2 minutes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { elapsedText } from "./format.ts";
 * assert.equal(elapsedText(1_512_000), "25 minutes 12 seconds");
 * ```
 */
export function elapsedText(ms: number): string {
  const parts: string[] = [];
  let left = Math.max(0, Math.floor(ms));
  for (const [unit, size] of UNITS) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? "" : "s"}`);
  }
  return parts.length ? parts.join(" ") : "0 seconds";
}

/** An ISO-8601 UTC time without milliseconds, as the guide's `/info` shows: `2023-03-28T17:43:13Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "Z";
}
