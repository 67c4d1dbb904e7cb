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
 * Each connection's request queue also checks its requests for their timeout every 100 ms, for
 * as long as the connection is open, although an idle consumer's only request is a fetch that
 * waits at the broker for seconds: 60 wake-ups a second for an idle mesh member's six
 * connections, 21-23 ms of CPU a second (`bench/idle_bench.ts`). {@link patchRequestTimeouts}
 * checks once, when the earliest request on its way is due.
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

type Proto = Record<string | symbol, unknown>;

/**
 * The guard every patch shares: applied once per class (`marker`), and only to a class whose
 * methods look as expected (`fits`); otherwise it is left alone and `unfit` is logged.
 */
function patchOnce(
  cls: { prototype: unknown } | undefined,
  marker: symbol,
  fits: (proto: Proto) => boolean,
  unfit: string,
  apply: (proto: Proto) => void,
): string {
  const proto = cls?.prototype as Proto | undefined;
  if (proto?.[marker]) return "already";
  if (!proto || !fits(proto)) {
    logger("kafka").warn(unfit);
    return "skipped";
  }
  apply(proto);
  proto[marker] = true;
  return "applied";
}

// The source of `proto[name]` when it is a function ("" otherwise), for the shape checks.
function sourceOf(proto: Proto, name: string): string {
  const f = proto[name];
  return typeof f === "function" ? f.toString() : "";
}

const PATCHED = Symbol.for("minimesh.kafkajs.idle-timer-patch");
/** Where the patched prototype keeps kafkajs's own scheduler (for the test that compares). */
export const ORIGINAL: unique symbol = Symbol.for("minimesh.kafkajs.original-scheduler");

/**
 * Applies the patch to `queue` once. Returns `"applied"`, `"already"`, or `"skipped"` (logged)
 * when the class is not the expected one.
 */
export function patchRequestQueue(queue: RequestQueueClass | undefined): string {
  return patchOnce(
    queue,
    PATCHED,
    (proto) => {
      const source = sourceOf(proto, "scheduleCheckPendingRequests");
      return typeof proto.checkPendingRequests === "function" &&
        source.includes("this.pending") && source.includes("this.throttledUntil");
    },
    "kafkajs's request queue is not the one the idle-timer patch expects: not patched " +
      "(idle connections may wake every millisecond)",
    (proto) => {
      const original = proto.scheduleCheckPendingRequests as () => void;
      proto.scheduleCheckPendingRequests = function (
        this: { pending: unknown[]; throttledUntil: number },
      ) {
        if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
        original.call(this);
      };
      proto[ORIGINAL] = original;
    },
  );
}

/** A request on its way, as kafkajs's request queue keeps it. */
interface Inflight {
  sentAt: number;
  requestTimeout: number;
  timeoutRequest(): void;
}

/** The shape of kafkajs's request queue that the timeout patch relies on. */
export interface TimeoutQueueClass {
  prototype: { scheduleRequestTimeoutCheck?: unknown; push?: unknown; destroy?: unknown };
  // deno-lint-ignore no-explicit-any
  new (...args: any[]): unknown;
}

/** What the timeout patch uses of a request queue (kafkajs's own fields, and one of ours). */
interface TimeoutQueue {
  enforceRequestTimeout: boolean;
  requestTimeout: number;
  inflight: Map<number, Inflight>;
  pending: unknown[];
  /** kafkajs's field for its 100-ms interval; the patch keeps its timer there, so `destroy` ends it. */
  requestTimeoutIntervalId: ReturnType<typeof setTimeout> | null;
  isConnected(): boolean;
  destroy(): void;
  [TIMEOUT_DUE]?: number;
}

const TIMEOUTS_PATCHED = Symbol.for("minimesh.kafkajs.request-timeout-patch");
/** When the queue's timeout check is due (ms since the epoch; absent: none armed). */
const TIMEOUT_DUE = Symbol.for("minimesh.kafkajs.request-timeout-due");

// The check at `at`, unless one is armed as early already.
function armTimeoutCheck(q: TimeoutQueue, at: number): void {
  const due = q[TIMEOUT_DUE];
  if (due !== undefined && due <= at) return;
  clearTimeout(q.requestTimeoutIntervalId ?? undefined);
  q[TIMEOUT_DUE] = at;
  q.requestTimeoutIntervalId = setTimeout(() => checkTimeouts(q), Math.max(0, at - Date.now()));
}

// What kafkajs's interval did on each tick: time out the requests past their timeout, and stop
// once the connection is closed; then wait for the next request's timeout.
function checkTimeouts(q: TimeoutQueue): void {
  q[TIMEOUT_DUE] = undefined;
  q.requestTimeoutIntervalId = null;
  const now = Date.now();
  let next = Infinity;
  for (const request of [...q.inflight.values()]) {
    const due = request.sentAt + request.requestTimeout;
    if (now > due) request.timeoutRequest();
    else next = Math.min(next, due + 1);
  }
  if (!q.isConnected()) return q.destroy();
  // A request still waiting to be sent (throttled) is timed from when it is.
  if (q.pending.length > 0) next = Math.min(next, now + q.requestTimeout);
  if (next < Infinity) armTimeoutCheck(q, next);
}

/**
 * Patches kafkajs's request queue so that requests are checked for their timeout when the
 * earliest is due (armed by `push`, since a request's timeout is at least the queue's), instead
 * of every 100 ms for the life of the connection. Returns `"applied"`, `"already"`, or
 * `"skipped"` (logged) when the class is not the expected one.
 */
export function patchRequestTimeouts(queue: TimeoutQueueClass | undefined): string {
  return patchOnce(
    queue,
    TIMEOUTS_PATCHED,
    (proto) => {
      const source = sourceOf(proto, "scheduleRequestTimeoutCheck");
      return typeof proto.push === "function" && typeof proto.destroy === "function" &&
        source.includes("this.inflight") && source.includes("requestTimeoutIntervalId") &&
        source.includes("timeoutRequest");
    },
    "kafkajs's request queue is not the one the request-timeout patch expects: not patched " +
      "(each connection checks its requests every 100 ms)",
    (proto) => {
      const push = proto.push as (...a: unknown[]) => unknown;
      const destroy = proto.destroy as () => void;
      // kafkajs's `destroy` clears the timer (a disconnect, a reconnect): no check is armed then.
      proto.destroy = function (this: TimeoutQueue) {
        this[TIMEOUT_DUE] = undefined;
        destroy.call(this);
      };
      proto.scheduleRequestTimeoutCheck = function (this: TimeoutQueue) {
        if (!this.enforceRequestTimeout) return;
        this.destroy();
        if (this.inflight.size > 0) armTimeoutCheck(this, Date.now() + this.requestTimeout);
      };
      proto.push = function (this: TimeoutQueue, ...args: unknown[]) {
        const r = push.apply(this, args);
        // (Sent now or later, it times out no sooner than this: the check then finds when.)
        if (this.enforceRequestTimeout) armTimeoutCheck(this, Date.now() + this.requestTimeout);
        return r;
      };
    },
  );
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
  return patchOnce(
    group,
    FETCH_PATCHED,
    (proto) => {
      const source = sourceOf(proto, "recoverFromFetch");
      return source.includes("KafkaJSBrokerNotFound") && source.includes("refreshMetadata") &&
        typeof proto.heartbeat === "function";
    },
    "kafkajs's consumer group is not the one the refused-fetch patch expects: not patched " +
      "(a consumer may take long to follow a new partition leader)",
    (proto) => {
      const recover = proto.recoverFromFetch as (e: Error) => Promise<void>;
      const heartbeat = proto.heartbeat as (a: unknown) => Promise<void>;
      proto.recoverFromFetch = async function (this: GroupInternals, e: Error) {
        if (e?.name !== "KafkaJSConnectionError") return recover.call(this, e);
        await new Promise((r) => setTimeout(r, REFUSED_FETCH_PAUSE_MS));
        await this.cluster.refreshMetadata().catch(() => {});
      };
      proto.heartbeat = async function (this: GroupInternals, args: unknown) {
        try {
          return await heartbeat.call(this, args);
        } catch (e) {
          if ((e as Error)?.name !== "KafkaJSConnectionError") throw e;
          this.lastRequest = Date.now(); // the next try after the heartbeat interval
          if (this[FINDING]) return;
          this[FINDING] = true;
          // Not awaited: kafkajs retries the lookup for seconds, and fetches must go on
          // meanwhile. Until Kafka moves the coordinator this finds the same broker, and the next
          // refused heartbeat looks again.
          this.cluster.findGroupCoordinator({ groupId: this.groupId }).then(
            (c) => (this.coordinator = c),
            () => {},
          ).finally(() => (this[FINDING] = false));
        }
      };
    },
  );
}

/** The shape of kafkajs's consumer runner that the stopped-fetch patch relies on. */
export interface RunnerClass {
  prototype: { fetch?: unknown };
}

const RUNNER_PATCHED = Symbol.for("minimesh.kafkajs.stopped-fetch-patch");

/**
 * Patches kafkajs's consumer runner so that a fetch asked of it once it is stopped fails instead
 * of answering "nothing" at once. kafkajs's fetch manager starts new fetchers after a rebalance
 * of its fetchers (a broker joined or left the metadata: a kill -9) without looking whether the
 * runner stopped meanwhile; such a fetcher asks the stopped runner again as soon as it answers,
 * in microtasks only, for good: its process ran at 100 % and no timer or socket was handled
 * again (its stop never ended; measured in the 3-broker cluster test, 3 runs of 6 under load).
 * A fetch that begins after the stop can only be such a fetcher's (a stop ends the fetchers it
 * knows at once): failing it ends that fetcher, and the runner ends as after any fetch error.
 * Returns `"applied"`, `"already"`, or `"skipped"` (logged).
 */
export function patchRunner(runner: RunnerClass | undefined): string {
  return patchOnce(
    runner,
    RUNNER_PATCHED,
    (proto) => {
      const source = sourceOf(proto, "fetch");
      return source.includes("!this.running") && source.includes("return []");
    },
    "kafkajs's consumer runner is not the one the stopped-fetch patch expects: not patched " +
      "(a consumer stopped during a fetcher rebalance may spin)",
    (proto) => {
      const fetch = proto.fetch as (nodeId: unknown) => Promise<unknown>;
      proto.fetch = function (this: { running: boolean }, nodeId: unknown) {
        if (!this.running) {
          return Promise.reject(new Error("The consumer stopped: this fetcher ends"));
        }
        return fetch.call(this, nodeId);
      };
    },
  );
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
 * Loads kafkajs's request queue, consumer group and consumer runner and patches them; the first
 * call does it, later ones wait. Resolves with the four results, e.g. `applied,applied,applied,applied`.
 */
export function patchKafkajs(): Promise<string> {
  loading ??= Promise.all([
    import("kafkajs/src/network/requestQueue/index.js").then(
      (m) => {
        const queue = m.default ?? m;
        return `${patchRequestQueue(queue as RequestQueueClass)},${
          patchRequestTimeouts(queue as TimeoutQueueClass)
        }`;
      },
      skipped("request queue"),
    ),
    import("kafkajs/src/consumer/consumerGroup.js").then(
      (m) => patchConsumerGroup((m.default ?? m) as ConsumerGroupClass),
      skipped("consumer group"),
    ),
    import("kafkajs/src/consumer/runner.js").then(
      (m) => patchRunner((m.default ?? m) as RunnerClass),
      skipped("consumer runner"),
    ),
  ]).then((r) => r.join(","));
  return loading;
}
