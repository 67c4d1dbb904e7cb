import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DeadlineTimer, TICK_MS } from "../internal.ts";
import type { Deadline } from "../internal.ts";
import { deferred } from "./_helpers.ts";

function deadline(timeout: number, onExpire: (d: Deadline) => void): Deadline {
  const d: Deadline = {
    gen: 0,
    settled: false,
    fifo: undefined,
    timeout,
    expire: () => onExpire(d),
  };
  return d;
}

describe("DeadlineTimer", () => {
  it("expires only unsettled deadlines, after their timeout, across compactions", async () => {
    const timer = new DeadlineTimer();
    const expired = new Set<number>();
    const all = deferred();
    const started = Date.now();
    const ds: Deadline[] = [];
    const keep = new Set([0, 777, 4096, 9999]);
    let firedEarly = false;
    for (let i = 0; i < 10_000; i++) {
      const d = deadline(40, () => {
        if (Date.now() - started < 40) firedEarly = true;
        expired.add(i);
        if (expired.size === keep.size) all.resolve();
      });
      ds.push(d);
      timer.add(d);
    }
    // Settle out of order, so the FIFO compacts while unsettled entries remain inside it.
    for (let i = 9_998; i >= 0; i--) if (!keep.has(i)) assert.equal(timer.settle(ds[i]), true);
    assert.equal(timer.pending, keep.size);
    await all.promise;
    assert.deepEqual([...expired].sort((a, b) => a - b), [...keep]);
    assert.equal(firedEarly, false);
    assert.equal(timer.pending, 0);
    assert.equal(timer.settle(ds[1]), false, "settling twice reports false");
  });

  it("keeps separate timeouts apart and fires within a few ticks", async () => {
    const timer = new DeadlineTimer();
    const started = Date.now();
    const fired: [number, number][] = [];
    const done = deferred();
    for (const t of [60, 15, 30]) {
      timer.add(deadline(t, () => {
        fired.push([t, Date.now() - started]);
        if (fired.length === 3) done.resolve();
      }));
    }
    await done.promise;
    assert.deepEqual(fired.map(([t]) => t), [15, 30, 60]);
    for (const [t, at] of fired) {
      assert.ok(at >= t, `${t} ms fired at ${at}`);
      assert.ok(at <= t + 20 * TICK_MS, `${t} ms fired late at ${at}`);
    }
  });
});
