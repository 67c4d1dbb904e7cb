/**
 * kafkajs 2.2.4 re-arms a timer in every broker connection's request queue after each check,
 * even with nothing pending and no throttling: its delay is then negative, so the runtime
 * clamps it to 1 ms, and every connection wakes 1,000 times a second for its whole life
 * (tulios/kafkajs#1751; the fix in #1755 is not released). Measured here: 78 ms of CPU per
 * second for an idle mesh member. A check is only needed when requests wait or a throttle is
 * set, so only then is the original scheduler called.
 *
 * A consumer whose partition leader's broker died (kill -9) goes on fetching from it: kafkajs
 * refreshes its metadata for "not leader" answers and closed connections, but a refused one
 * goes to the runner's retrier, which backs off up to 30 s and asks the same dead broker again
 * until a group rejoin happens to refresh the metadata (27 s without a record, measured on a
 * 3-broker cluster). And kafkajs heart-beats after every fetch: when the group's coordinator was
 * on the dead broker, each heartbeat fails, the fetch loop with it, and the consumer stops until
 * its retries run out (15 s) and it restarts. {@link patchConsumerGroup} makes a refused fetch
 * refresh the metadata after a short pause, and a refused heartbeat look for the group's new
 * coordinator without stopping the fetches (the group only keeps offsets for the mesh's
 * consumers), so the consumer follows the new leader as soon as Kafka elects it.
 *
 * The patches touch internals, so each is checked first: a kafkajs whose classes look different
 * is left alone, with a warning.
 *
 * @module
 */
import { logger } from "../../bus/_log.ts";

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

/** The shape of kafkajs's consumer group that the fetch patch relies on. */
export interface ConsumerGroupClass {
  prototype: { recoverFromFetch?: unknown; heartbeat?: unknown };
}

const FETCH_PATCHED = Symbol.for("minimesh.kafkajs.refused-fetch-patch");
const FINDING = Symbol.for("minimesh.kafkajs.finding-coordinator");
/** The pause before a refused fetch refreshes the metadata (and the fetch loop goes on). */
export const REFUSED_FETCH_PAUSE_MS = 250;

/** What the patched methods use of a kafkajs consumer group. */
interface GroupInternals {
  groupId: string;
  lastRequest: number;
  coordinator: unknown;
  cluster: {
    refreshMetadata(): Promise<void>;
    findGroupCoordinator(q: { groupId: string }): Promise<unknown>;
  };
  [FINDING]?: boolean;
}

/**
 * Patches kafkajs's consumer group: `recoverFromFetch` treats a refused connection (its
 * leader's broker is gone) as stale metadata (wait {@link REFUSED_FETCH_PAUSE_MS}, refresh, fetch
 * again); `heartbeat` answers a refused connection (its coordinator's broker is gone) by
 * looking for the new coordinator in the background instead of failing the fetch loop.
 * Returns `"applied"`, `"already"`, or `"skipped"` (logged).
 */
export function patchConsumerGroup(group: ConsumerGroupClass | undefined): string {
  const proto = group?.prototype as Record<string | symbol, unknown> | undefined;
  if (proto?.[FETCH_PATCHED]) return "already";
  const recover = proto?.recoverFromFetch;
  const heartbeat = proto?.heartbeat;
  const source = typeof recover === "function" ? recover.toString() : "";
  if (
    !proto || !source.includes("KafkaJSBrokerNotFound") || !source.includes("refreshMetadata") ||
    typeof heartbeat !== "function"
  ) {
    logger("kafka").warn(
      "kafkajs's consumer group is not the one the refused-fetch patch expects: not patched " +
        "(a consumer may take long to follow a new partition leader)",
    );
    return "skipped";
  }
  proto.recoverFromFetch = async function (this: GroupInternals, e: Error) {
    if (e?.name !== "KafkaJSConnectionError") {
      return (recover as (e: Error) => Promise<void>).call(this, e);
    }
    await new Promise((r) => setTimeout(r, REFUSED_FETCH_PAUSE_MS));
    await this.cluster.refreshMetadata().catch(() => {});
  };
  proto.heartbeat = async function (this: GroupInternals, args: unknown) {
    try {
      return await (heartbeat as (a: unknown) => Promise<void>).call(this, args);
    } catch (e) {
      if ((e as Error)?.name !== "KafkaJSConnectionError") throw e;
      this.lastRequest = Date.now(); // the next try after the heartbeat interval
      if (this[FINDING]) return;
      this[FINDING] = true;
      // Not awaited: kafkajs retries the lookup for seconds, and fetches must go on meanwhile.
      // Until Kafka moves the coordinator this finds the same broker, and the next refused
      // heartbeat looks again.
      this.cluster.findGroupCoordinator({ groupId: this.groupId }).then(
        (c) => (this.coordinator = c),
        () => {},
      ).finally(() => (this[FINDING] = false));
    }
  };
  proto[FETCH_PATCHED] = true;
  return "applied";
}

let loading: Promise<string> | undefined;

function skipped(what: string) {
  return (e: unknown) => {
    logger("kafka").warn("kafkajs's {what} cannot be loaded ({message}): not patched", {
      what,
      message: (e as Error).message,
    });
    return "skipped";
  };
}

/**
 * Loads kafkajs's request queue and consumer group and patches them; the first call does it,
 * later ones wait. Resolves with both results, e.g. `applied,applied`.
 */
export function patchKafkajs(): Promise<string> {
  loading ??= Promise.all([
    import("kafkajs/src/network/requestQueue/index.js").then(
      (m) => patchRequestQueue((m.default ?? m) as RequestQueueClass),
      skipped("request queue"),
    ),
    import("kafkajs/src/consumer/consumerGroup.js").then(
      (m) => patchConsumerGroup((m.default ?? m) as ConsumerGroupClass),
      skipped("consumer group"),
    ),
  ]).then((r) => r.join(","));
  return loading;
}
