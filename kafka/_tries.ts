// A write tried until the broker has it, the way the default client writes (docs/reliability.md):
// only what may succeed is tried again, only what is not written yet, after a pause; and a
// request that goes as one per partition leader lets each leader's part go its own way. A part
// that a leader failed while other parts are on their way is tried again apart, at once: else it
// would wait for the slowest leader, which may be one that waits on its replicas up to the
// produce timeout. The Kafka specifics (metadata, connections, the produce request) are the
// caller's, in `Tries`.

/** What a write's tries are made of. */
export interface Tries<R> {
  /**
   * Sends `records` once (`attempt` from 1), resolving when the broker has them all. With
   * several leaders it may call `written` with a leader's records once that leader has them, and
   * `failed` with a leader's records and error once it refused them: when `failed` returns true,
   * they were taken over and no longer count in this try.
   */
  send(
    records: R[],
    attempt: number,
    written: (list: R[]) => void,
    failed: (list: R[], error: Error) => boolean,
  ): Promise<void>;
  /** Whether records that failed with `error` are tried again (a retriable error, in time). */
  mayRetry(error: unknown): boolean;
  /** Waits before the try after `attempt` failed with `error`. */
  pause(error: unknown, attempt: number): Promise<void>;
  /** Hears of records the broker has before the whole write ends (their callers may go on). */
  written(list: R[]): void;
}

/**
 * Writes `records` with `tries`, from `attempt`. Resolves once the broker has them all; rejects
 * with the first error that is not tried again, once every part tried apart has ended (so that no
 * record is still on its way when the caller hears).
 */
export async function writeAll<R>(records: R[], tries: Tries<R>, attempt = 1): Promise<void> {
  // What no longer belongs to this try: written, or taken over by a part of its own.
  let gone: Set<R> | undefined;
  const leave = (list: R[]) => {
    gone ??= new Set();
    for (const r of list) gone.add(r);
  };
  const written = (list: R[]) => {
    leave(list);
    tries.written(list);
  };
  const apart: Promise<void>[] = [];
  const failed = (list: R[], error: Error) => {
    if (!tries.mayRetry(error)) return false;
    leave(list);
    const part = writeApart(list, tries, error, attempt);
    part.catch(() => {}); // heard below, once the rest has ended: not an unhandled rejection
    apart.push(part);
    return true;
  };
  let failure: { error: unknown } | undefined;
  for (;; attempt++) {
    try {
      if (gone !== undefined) records = records.filter((r) => !gone!.has(r));
      await tries.send(records, attempt, written, failed);
      break;
    } catch (error) {
      if (!tries.mayRetry(error)) {
        failure = { error };
        break;
      }
      await tries.pause(error, attempt);
    }
  }
  // (Awaited only when parts went apart: the usual write ends without a turn more.)
  const parts = apart.length === 0 ? [] : await Promise.allSettled(apart);
  if (failure !== undefined) throw failure.error;
  for (const p of parts) if (p.status === "rejected") throw p.reason;
}

// A part that failed at `attempt`, tried again after the pause its error asks for; its callers
// hear as soon as it is written.
async function writeApart<R>(
  list: R[],
  tries: Tries<R>,
  error: Error,
  attempt: number,
): Promise<void> {
  await tries.pause(error, attempt);
  await writeAll(list, tries, attempt + 1);
  tries.written(list);
}
