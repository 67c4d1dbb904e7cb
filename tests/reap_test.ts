// A test or a benchmark that ends, or is killed alone, takes its child processes with it
// (tests/_reap.ts): they would otherwise keep the broker and the cores busy for the next run.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawnDeno } from "./_processes.ts";
import { eventually } from "./_presence.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("child processes end with their parent", () => {
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    it(`when the parent alone gets ${signal}`, async () => {
      const parent = spawnDeno("tests/fixtures/parent_of.ts", []);
      const pid = Number(/CHILD (\d+)/.exec(await parent.waitFor(/^CHILD \d+/))![1]);
      try {
        assert.ok(alive(pid), "the child runs");
        parent.proc.kill(signal); // the parent only, as `kill <pid>` does
        await parent.exited;
        await eventually(() => !alive(pid), 5000, `the child ${pid} to end after the ${signal}`);
      } finally {
        if (alive(pid)) process.kill(pid, "SIGKILL");
      }
    });
  }

  it("when the parent calls process.exit", async () => {
    const parent = spawnDeno("tests/fixtures/parent_of.ts", ["exit"]);
    const pid = Number(/CHILD (\d+)/.exec(await parent.waitFor(/^CHILD \d+/))![1]);
    try {
      await parent.exited;
      await eventually(() => !alive(pid), 5000, `the child ${pid} to end after the parent's exit`);
    } finally {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
