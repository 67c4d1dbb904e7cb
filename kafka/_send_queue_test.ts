import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { REQUEST_BYTES, REQUESTS_IN_FLIGHT, SendQueue } from "./_send_queue.ts";
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

  it("keeps a turn's requests in flight together, within the bound, and each caller waits for all of its own (generated)", async () => {
    // Callers of 0-6 records of 0-300 KiB in one turn; each request answers after 0-3 ms, or fails.
    const callers = fc.array(
      fc.array(fc.integer({ min: 0, max: 300 * 1024 }), { maxLength: 6 }),
      { minLength: 1, maxLength: 12 },
    );
    await fc.assert(
      fc.asyncProperty(callers, fc.array(fc.boolean(), { maxLength: 40 }), async (sizes, fails) => {
        let inFlight = 0;
        let most = 0;
        const requests: { values: string[]; ok: boolean }[] = [];
        const q = new SendQueue(async (records) => {
          const ok = !(fails[requests.length] ?? false);
          requests.push({ values: records.map((r) => String(r.key)), ok });
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, requests.length % 4));
          inFlight--;
          if (!ok) throw new Error("broker says no");
        }, () => Promise.resolve());
        const outcomes = await Promise.allSettled(sizes.map((s, c) =>
          q.send(s.map((n, i) => ({
            topic: "t",
            partition: 0,
            key: `${c}.${i}`,
            value: new Uint8Array(n),
          })))
        ));
        assert.ok(most <= REQUESTS_IN_FLIGHT, `${most} in flight`);
        const all = sizes.flatMap((s, c) => s.map((_, i) => `${c}.${i}`));
        assert.deepEqual(requests.flatMap((r) => r.values), all, "every record once, in order");
        sizes.forEach((_, c) => {
          const mine = requests.filter((r) => r.values.some((v) => v.startsWith(`${c}.`)));
          const expected = mine.every((r) => r.ok) ? "fulfilled" : "rejected";
          assert.equal(outcomes[c].status, expected, `caller ${c}`);
        });
        if (requests.length > REQUESTS_IN_FLIGHT && fails.every((f) => !f)) {
          assert.ok(most > 1, "requests overlap");
        }
      }),
      { numRuns: 60 },
    );
  });
});
