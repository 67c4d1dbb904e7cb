// Child processes that end with this one. A benchmark or a test killed alone (SIGTERM, SIGINT,
// SIGHUP, not its whole process group) would otherwise leave its monitor and applications
// running, busy on the broker and the cores that the next run measures.
import type { ChildProcess } from "node:child_process";
import process from "node:process";

const running = new Set<ChildProcess>();
let hooked = false;

/** Kills `proc` (SIGKILL) if it still runs when this process exits or is told to stop. */
export function endWithMe(proc: ChildProcess): void {
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
  if (hooked) return;
  hooked = true;
  process.once("exit", killAll);
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130], ["SIGHUP", 129]] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

function killAll(): void {
  for (const p of running) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone already */ }
  }
  running.clear();
}
