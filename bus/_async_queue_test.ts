import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AsyncQueue } from "./_async_queue.ts";

describe("AsyncQueue", () => {
  it("yields pushed items in order, to a waiting reader too, then ends", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    const got: number[] = [];
    const reading = (async () => {
      for await (const n of q) got.push(n);
    })();
    await Promise.resolve();
    q.push(2);
    q.push(3);
    q.end();
    await reading;
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(q.push(4), false, "nothing is taken after the end");
  });

  it("keeps at most max unread items, dropping the oldest", async () => {
    const q = new AsyncQueue<number>(2);
    for (let i = 1; i <= 5; i++) q.push(i);
    q.end();
    assert.deepEqual(await Array.fromAsync(q), [4, 5]);
    assert.equal(q.dropped, 3);
  });

  it("throws the end's error after the items, and calls onClose once on break", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.end(new Error("boom"));
    await assert.rejects(Array.fromAsync(q), /boom/);
    let closed = 0;
    const r = new AsyncQueue<number>(Infinity, () => closed++);
    r.push(1);
    r.push(2);
    for await (const _ of r) break;
    r.end();
    assert.equal(closed, 1);
  });
});
