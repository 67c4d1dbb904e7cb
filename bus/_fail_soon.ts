// A send's or request's failure, told on a later turn of the event loop. A caller that tries
// again at once in a loop (`while (...) try { await po.request(...) } catch {}`) would otherwise
// run in microtasks only while a route is missing or the mesh away: no timer, socket or monitor
// message would be handled again, so the mesh could never come back (measured: a test's 32
// callers spun for over 7 minutes after a broker's kill -9).
import { setImmediate } from "node:timers";

/** A promise that rejects with `e` on a later turn of the event loop (after its I/O and timers). */
export function failSoon(e: unknown): Promise<never> {
  return new Promise((_, reject) => setImmediate(reject, e));
}
