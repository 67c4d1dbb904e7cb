import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UsualTime } from "./_usual.ts";

describe("UsualTime", () => {
  it("starts at the first sample and moves a sixteenth of the way to each next one", () => {
    const u = new UsualTime();
    assert.equal(u.ms, 0);
    u.add(800);
    assert.equal(u.ms, 800);
    u.add(1600);
    assert.equal(u.ms, 850);
    for (let i = 0; i < 200; i++) u.add(100);
    assert.ok(Math.abs(u.ms - 100) < 1, `settles on a steady time (${u.ms})`);
  });
});
