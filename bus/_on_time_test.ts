import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { everyTick } from "./_on_time.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("everyTick", () => {
  it("skips the tick that follows a stall of the event loop, and only that one", async () => {
    const checks: number[] = [];
    const timer = everyTick(50, (now, onTime) => onTime && checks.push(now));
    try {
      await sleep(180);
      const before = checks.length;
      assert.ok(before >= 2, `ticks on time are checks (${before})`);
      const stalled = Date.now();
      while (Date.now() - stalled < 400) { /* the loop stands still */ }
      const resumed = Date.now();
      await sleep(20);
      assert.equal(checks.length, before, "the late tick judged nothing");
      await sleep(150);
      assert.ok(checks.length > before, "the ticks after it judge again");
      assert.ok(checks.slice(before).every((t) => t > resumed));
    } finally {
      clearInterval(timer);
    }
  });
});
