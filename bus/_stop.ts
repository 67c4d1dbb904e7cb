// A graceful stop in order (docs/reliability.md): every participant stops taking new work, the
// work in progress finishes for up to the grace period, then the participants stop, last added
// first.
import { logger } from "./_log.ts";
import { within } from "./_within.ts";

const log = logger("platform");

/**
 * A part of an application that takes part in its graceful stop ({@link Platform.stop}): an
 * HTTP server, a mesh connector.
 */
export interface StopParticipant {
  /** Its name, for the log. */
  name: string;
  /** Stops taking new work; called on every participant first, in the order they were added. */
  drain?(): void | Promise<void>;
  /** How much work it still has in progress (0 when idle). */
  pending?(): number;
  /** Releases everything; called once all is idle (or the grace period is over), last added first. */
  stop(): Promise<void>;
}

/** Options of {@link Platform.stop}. */
export interface StopOptions {
  /**
   * Milliseconds to wait for work in progress before stopping anyway (default:
   * `drain.grace.period` seconds, 10).
   */
  gracePeriod?: number;
}

// One step of a graceful stop on each participant in turn, until `deadline` (ms since the
// epoch): a failure is logged, never stops it; a participant still busy at the deadline is left
// to finish on its own (the process may exit), with a warning.
async function eachStep(
  participants: StopParticipant[],
  step: string,
  run: (p: StopParticipant) => void | Promise<void>,
  deadline: number,
): Promise<void> {
  for (const p of participants) {
    try {
      if (!(await within(Promise.resolve().then(() => run(p)), deadline - Date.now()))) {
        log.warn("{name} did not {step} in time: going on without it", { name: p.name, step });
      }
    } catch (e) {
      log.warn("{name} failed to {step}: {message}", {
        name: p.name,
        step,
        message: (e as Error).message,
      });
    }
  }
}

/**
 * Drains `participants`, waits while `pending()` says work is in progress, then stops them,
 * last added first; all of it within `grace` ms, whatever the participants wait for (a Kafka
 * that does not answer, say): the last second of it (half, for a grace under 2 s) is kept for
 * the stop step, which gets a second at least.
 */
export async function stopInOrder(
  participants: StopParticipant[],
  grace: number,
  pending: () => number,
): Promise<void> {
  log.info("Stopping: draining for up to {s} s", { s: grace / 1000 });
  const end = Date.now() + grace;
  const deadline = end - Math.min(1000, grace / 2);
  await eachStep(participants, "drain", (p) => p.drain?.(), deadline);
  let left = pending();
  while (left > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    left = pending();
  }
  if (left > 0) log.warn("Grace period over with {n} unit(s) of work in progress", { n: left });
  await eachStep(participants.reverse(), "stop", (p) => p.stop(), Math.max(end, Date.now() + 1000));
}
