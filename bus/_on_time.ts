// Periodic checks that judge others' silence must not judge from a tick that came late: while
// this process's own event loop stood still (a long collection, a starved CPU), the messages
// that would show the others alive waited behind it, unread. A late tick judges nothing; the
// next one, after those messages were read, does.

/** A timer from {@link everyTick}; stop it with `clearInterval`. */
export type TickTimer = ReturnType<typeof setInterval>;

/**
 * Calls `tick(now, onTime)` every `ms`; `onTime` is false for a tick more than `lateMs`
 * (default: `ms`) behind its schedule, which should judge no silence.
 *
 * @example
 * ```ts
 * import { everyTick } from "./_on_time.ts";
 * let heardAt = Date.now();
 * const timer = everyTick(1000, (now, onTime) => {
 *   if (onTime && now - heardAt > 6000) console.log("silent");
 * });
 * clearInterval(timer);
 * ```
 */
export function everyTick(
  ms: number,
  tick: (now: number, onTime: boolean) => void,
  lateMs: number = ms,
): TickTimer {
  let last = Date.now();
  return setInterval(() => {
    const now = Date.now();
    const onTime = now - last <= ms + lateMs;
    last = now;
    tick(now, onTime);
  }, ms);
}

/**
 * Calls `tick(silentMs, now)` every `ms` with how long another party has been silent: since
 * `heardAt()`, the start, or the last tick more than `lateMs` late, whichever is latest. A late
 * tick means this process stood still, and what the other party said meanwhile may be queued
 * behind everything else that came: its silence is counted again from then.
 *
 * @example
 * ```ts
 * import { watchSilence } from "./_on_time.ts";
 * const heardAt = Date.now();
 * const timer = watchSilence(1000, 500, () => heardAt, (silent) => {
 *   if (silent > 6000) console.log("silent");
 * });
 * clearInterval(timer);
 * ```
 */
export function watchSilence(
  ms: number,
  lateMs: number,
  heardAt: () => number,
  tick: (silentMs: number, now: number) => void,
): TickTimer {
  let since = Date.now();
  return everyTick(ms, (now, onTime) => {
    if (!onTime) since = now;
    else tick(now - Math.max(heardAt(), since), now);
  }, lateMs);
}
