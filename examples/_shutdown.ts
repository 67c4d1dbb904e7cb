/**
 * Graceful stop for the examples: on Ctrl-C or SIGTERM, run `stop` once, then exit.
 *
 * @module
 */
import process from "node:process";

/** Runs `stop` once on SIGINT or SIGTERM, then exits with code 0. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      stop().finally(() => process.exit(0));
    });
  }
}
