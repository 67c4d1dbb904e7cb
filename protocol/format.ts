/**
 * Text forms used by the actuator endpoints.
 *
 * @module
 */

const UNITS: [string, number][] = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
];

/**
 * A duration exactly as the Java original's `Utility.elapsedTime` writes it (Java monitors show
 * it, and the guide's `/info`): `25 minutes 12 seconds`, `1 hour 2 minutes`, `450 ms` under a
 * second. Its quirks are kept: a whole day, hour or minute counts in the next unit down (`60
 * minutes`, as Java compares with `>`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { elapsedText } from "./format.ts";
 * assert.equal(elapsedText(1_512_000), "25 minutes 12 seconds");
 * assert.equal(elapsedText(3_600_000), "60 minutes");
 * assert.equal(elapsedText(450), "450 ms");
 * ```
 */
export function elapsedText(ms: number): string {
  const parts: string[] = [];
  let left = Math.max(0, Math.floor(ms));
  for (const [unit, size] of UNITS) {
    if (left <= size) continue;
    const n = Math.floor(left / size);
    left -= n * size;
    parts.push(`${n} ${unit}${n === 1 ? "" : "s"}`);
  }
  if (left >= 1000) {
    const n = Math.floor(left / 1000);
    parts.push(`${n} second${n === 1 ? "" : "s"}`);
  }
  return parts.length ? parts.join(" ") : `${left} ms`;
}

/**
 * A time as the Java original's `Utility.getLocalTimestamp` writes it (the `created` an app
 * reports to a monitor): the local date and time of this process's time zone in the form of
 * Java's `LocalDateTime.toString()` with a space for the `T`: `2026-11-27 18:55:01.123`, with
 * seconds and milliseconds left out when they are zero, as Java does.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { localTimestamp } from "./format.ts";
 * assert.match(localTimestamp(Date.now()), /^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d(\.\d{3})?)?$/);
 * ```
 */
export function localTimestamp(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  let text = `${String(d.getFullYear()).padStart(4, "0")}-${two(d.getMonth() + 1)}-` +
    `${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
  const seconds = d.getSeconds();
  const millis = d.getMilliseconds();
  if (seconds > 0 || millis > 0) text += `:${two(seconds)}`;
  if (millis > 0) text += `.${String(millis).padStart(3, "0")}`;
  return text;
}

/** An ISO-8601 UTC time without milliseconds, as the guide's `/info` shows: `2023-03-28T17:43:13Z`. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + "Z";
}
