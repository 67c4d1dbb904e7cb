/**
 * Actuator helpers shared by the HTTP endpoints.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { elapsedText } from "@minimesh/core/actuator";
 * assert.equal(elapsedText(61_000), "1 minute 1 second");
 * ```
 *
 * @module
 */
export { elapsedText, isoSeconds } from "./format.ts";
