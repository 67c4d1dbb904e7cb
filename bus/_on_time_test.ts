import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { everyTick, watchSilence } from "./_on_time.ts";

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

  it("watchSilence counts the silence again from the last late tick", async () => {
    const silences: number[] = [];
    const heardAt = Date.now();
    const timer = watchSilence(100, 60, () => heardAt, (silent) => silences.push(silent));
    try {
      // The loop stands still 200 ms at a time: the ticks after are late.
      for (let i = 0; i < 4; i++) {
        const stalled = Date.now();
        while (Date.now() - stalled < 200) { /* the loop stands still */ }
        await sleep(5);
      }
      const resumed = Date.now();
      silences.length = 0;
      await sleep(500);
      assert.ok(silences.length > 0, "ticks on time report the silence");
      // Counted from the last late tick, at the end of the stalls: not from heardAt, 800 ms
      // and more before. (Another late tick, from a loaded machine, only makes it shorter.)
      const last = silences.at(-1)!;
      assert.ok(last <= Date.now() - resumed + 100, `${last} ms: counted from ${heardAt}`);
    } finally {
      clearInterval(timer);
    }
  });
});
