/**
 * kafkajs 2.2.4 re-arms a timer in every broker connection's request queue after each check,
 * even with nothing pending and no throttling: its delay is then negative, so the runtime
 * clamps it to 1 ms, and every connection wakes 1,000 times a second for its whole life
 * (tulios/kafkajs#1751; the fix in #1755 is not released). Measured here: 78 ms of CPU per
 * second for an idle mesh member. A check is only needed when requests wait or a throttle is
 * set, so only then is the original scheduler called.
 *
 * The patch touches an internal, so it is checked first: a kafkajs whose request queue looks
 * different is left alone, with a warning.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";

/** The shape of kafkajs's request queue that the patch relies on. */
export interface RequestQueueClass {
  prototype: { scheduleCheckPendingRequests?: unknown; checkPendingRequests?: unknown };
  // deno-lint-ignore no-explicit-any
  new (...args: any[]): { pending: unknown[]; throttledUntil: number };
}

const PATCHED = Symbol.for("minimesh.kafkajs.idle-timer-patch");
/** Where the patched prototype keeps kafkajs's own scheduler (for the test that compares). */
export const ORIGINAL: unique symbol = Symbol.for("minimesh.kafkajs.original-scheduler");

/**
 * Applies the patch to `queue` once. Returns `"applied"`, `"already"`, or `"skipped"` (logged)
 * when the class is not the expected one.
 */
export function patchRequestQueue(queue: RequestQueueClass | undefined): string {
  const proto = queue?.prototype as Record<string | symbol, unknown> | undefined;
  if (proto?.[PATCHED]) return "already";
  const original = proto?.scheduleCheckPendingRequests;
  const source = typeof original === "function" ? original.toString() : "";
  if (
    !proto || typeof proto.checkPendingRequests !== "function" ||
    !source.includes("this.pending") || !source.includes("this.throttledUntil")
  ) {
    logger("kafka").warn(
      "kafkajs's request queue is not the one the idle-timer patch expects: not patched " +
        "(idle connections may wake every millisecond)",
    );
    return "skipped";
  }
  proto.scheduleCheckPendingRequests = function (
    this: { pending: unknown[]; throttledUntil: number },
  ) {
    if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    (original as () => void).call(this);
  };
  proto[PATCHED] = true;
  proto[ORIGINAL] = original;
  return "applied";
}

let loading: Promise<string> | undefined;

/** Loads kafkajs's request queue and patches it; the first call does it, later ones wait. */
export function patchKafkajs(): Promise<string> {
  loading ??= import("kafkajs/src/network/requestQueue/index.js").then(
    (m) => patchRequestQueue((m.default ?? m) as RequestQueueClass),
    (e) => {
      logger("kafka").warn("kafkajs's request queue cannot be loaded ({message}): not patched", {
        message: (e as Error).message,
      });
      return "skipped";
    },
  );
  return loading;
}
