import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { REQUEST_BYTES, SendQueue } from "./_send_queue.ts";
import type { OutRecord } from "./client.ts";

const record = (value: string | Uint8Array): OutRecord => ({ topic: "t", partition: 0, value });

describe("SendQueue", () => {
  it("writes what one turn queued as one request, in order", async () => {
    const writes: string[][] = [];
    const q = new SendQueue(
      (records) => {
        writes.push(records.map((r) => String(r.value)));
        return Promise.resolve();
      },
      () => Promise.resolve(),
    );
    await Promise.all([q.send([record("a")]), q.send([record("b"), record("c")])]);
    await q.send([record("d")]);
    assert.deepEqual(writes, [["a", "b", "c"], ["d"]]);
  });

  it("splits a turn into requests of at most REQUEST_BYTES", async () => {
    const sizes: number[] = [];
    const q = new SendQueue(
      (records) => {
        sizes.push(records.reduce((n, r) => n + (r.value as Uint8Array).byteLength, 0));
        return Promise.resolve();
      },
      () => Promise.resolve(),
    );
    const big = new Uint8Array(REQUEST_BYTES / 2 + 1);
    await Promise.all([q.send([record(big)]), q.send([record(big)]), q.send([record(big)])]);
    assert.deepEqual(sizes, [big.byteLength, big.byteLength, big.byteLength]);
  });

  it("fails the callers of a failed request, and all of a turn that could not start", async () => {
    let fail = true;
    const q = new SendQueue(
      () => fail ? Promise.reject(new Error("broker says no")) : Promise.resolve(),
      () => Promise.resolve(),
    );
    await assert.rejects(q.send([record("x")]), /broker says no/);
    fail = false;
    await q.send([record("y")]);
    const down = new SendQueue(() => Promise.resolve(), () => Promise.reject(new Error("down")));
    const both = [down.send([record("a")]), down.send([record("b")])];
    for (const p of both) await assert.rejects(p, /down/);
  });
});
