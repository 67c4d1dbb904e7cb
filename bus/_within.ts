// A wait with a bound: whether some work settled in time, the timer cleared either way (a stop
// step, a disconnect that a third-party client may never finish).
import { clearTimeout, setTimeout } from "node:timers";

/**
 * Resolves true once `work` resolves, false when `ms` pass first; rejects when `work` rejects
 * in time.
 */
export async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(r, Math.max(0, ms), false));
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
