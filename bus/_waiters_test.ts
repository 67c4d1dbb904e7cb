import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WaiterTable } from "./_waiters.ts";

describe("WaiterTable", () => {
  it("finds, counts and removes entries by id", () => {
    const t = new WaiterTable<{ id: number }>();
    for (let id = 1; id <= 10; id++) t.add({ id });
    assert.equal(t.size, 10);
    assert.equal(t.get(7)?.id, 7);
    assert.equal(t.get(11), undefined);
    assert.equal(t.get(1.5), undefined);
    assert.ok(t.delete(7));
    assert.ok(!t.delete(7), "only once");
    assert.equal(t.get(7), undefined);
    assert.equal(t.size, 9);
    assert.deepEqual([...t.values()].map((w) => w.id), [1, 2, 3, 4, 5, 6, 8, 9, 10]);
  });

  it("keeps requests that outlive a ring of newer ones, and grows past many of them", () => {
    const t = new WaiterTable<{ id: number }>();
    const slow = [1, 2, 3];
    for (let id = 1; id <= 5000; id++) {
      t.add({ id });
      if (id > 100 && !slow.includes(id - 100)) t.delete(id - 100); // 100 in flight, three stay
    }
    for (const id of slow) assert.equal(t.get(id)?.id, id, `request ${id} still pending`);
    assert.equal(t.size, 103);
    for (const id of slow) assert.ok(t.delete(id));
    assert.equal(t.size, 100);
    // 10,000 pending at once: all found, none lost.
    const many = new WaiterTable<{ id: number }>();
    for (let id = 1; id <= 10_000; id++) many.add({ id });
    assert.equal(many.size, 10_000);
    for (let id = 1; id <= 10_000; id++) assert.equal(many.get(id)?.id, id);
    assert.equal(new Set([...many.values()].map((w) => w.id)).size, 10_000);
    for (let id = 1; id <= 10_000; id++) assert.ok(many.delete(id));
    assert.equal(many.size, 0);
  });

  it("lists exactly what is pending, whatever the order of adds and deletes (generated)", () => {
    for (let run = 0; run < 50; run++) {
      const t = new WaiterTable<{ id: number }>();
      const pending = new Set<number>();
      let next = 1;
      for (let step = 0; step < 3000; step++) {
        if (pending.size === 0 || Math.random() < 0.55) {
          t.add({ id: next });
          pending.add(next++);
        } else {
          const ids = [...pending];
          const id =
            ids[Math.floor(Math.random() * Math.min(ids.length, run % 2 ? 3 : ids.length))];
          assert.ok(t.delete(id));
          pending.delete(id);
        }
        if (step % 97 === 0) {
          assert.deepEqual(new Set([...t.values()].map((w) => w.id)), pending, `run ${run}`);
        }
      }
      assert.deepEqual(new Set([...t.values()].map((w) => w.id)), pending, `run ${run}`);
      assert.equal(t.size, pending.size);
    }
  });
});
