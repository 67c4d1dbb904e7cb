// What @platformatic/kafka's errors say: a network failure, a broker's error code, whether a
// produce may be tried again, and the message with its nested causes.
import { findErrorBy } from "@platformatic/kafka";

/** Broker answers that say the records were not written, and that a later try may succeed. */
const NOT_WRITTEN = [
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "NOT_ENOUGH_REPLICAS",
  "KAFKA_STORAGE_ERROR",
];

/**
 * The leader the cluster names for a partition takes no connection (its host is gone, and the
 * cluster has not yet named another): said before a client's connection timeout would.
 */
export class LeaderAway extends Error {
  /** @param leader The leader's `host:port`. */
  constructor(leader: string) {
    super(`Partition leader ${leader} takes no connection`);
    this.name = "LeaderAway";
  }
}

/** Whether `e` (or an error it nests) is the library's network or timeout error. */
export function isNetwork(e: unknown): boolean {
  return e instanceof LeaderAway ||
    findErrorBy(e as Error, "code", "PLT_KFK_NETWORK") !== null ||
    findErrorBy(e as Error, "code", "PLT_KFK_TIMEOUT") !== null;
}

/**
 * Broker answers that say the records may be written (the leader has them; its followers did not
 * confirm in time), and that a later try may succeed.
 */
const MAYBE_WRITTEN = ["REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS_AFTER_APPEND"];
const TRIED_AGAIN = [...NOT_WRITTEN, ...MAYBE_WRITTEN];

/**
 * Whether a failed produce may succeed when tried again: the broker refused the records (a
 * leader moved), the connection failed (the broker restarts), or the followers did not confirm
 * in time (`acks=all` while a broker rejoins). The last two may have written the records: tried
 * again, they are there twice, with one key, which the reader skips (see `RecentKeys`).
 */
export function retriable(e: unknown): boolean {
  return TRIED_AGAIN.some((id) => apiError(e, id)) || isNetwork(e);
}

/** Whether `e` (or an error it nests) is the broker's error `id`. */
export function apiError(e: unknown, id: string): boolean {
  return findErrorBy(e as Error, "apiId", id) !== null;
}

/**
 * The error with its causes in its message: the library nests the one that says what happened
 * (`connect ECONNREFUSED`, a TLS or SASL failure) under summaries ("Listing topics failed.").
 */
export function explained(e: unknown): Error {
  if (!(e instanceof Error)) return new Error(String(e));
  const chain = [e.message.replace(/\.$/, "")];
  let at: unknown = e;
  for (let depth = 0; depth < 8; depth++) {
    const nested = (at as { errors?: unknown[] }).errors;
    const next = nested?.[nested.length - 1] ?? (at as Error).cause;
    if (!(next instanceof Error)) break;
    const text = next.message.replace(/\.$/, "");
    if (!chain.includes(text)) chain.push(text);
    at = next;
  }
  return new Error(chain.join(": "), { cause: e });
}
