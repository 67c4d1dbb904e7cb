// Worker functions: CPU-bound work in worker threads, with the route's instance count, while the
// event loop keeps ticking. The wall-clock figure is in bench/workers_bench.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostOffice } from "../mod.ts";
import { registerWorker } from "../runtime/workers.ts";
import { testPlatform } from "./_helpers.ts";

const CPU_WORK = new URL("./fixtures/cpu_work.ts", import.meta.url);

describe("Worker functions", () => {
  it("compute off the event loop: timers tick while four run at once on four threads", async () => {
    const p = testPlatform();
    await using _w = registerWorker(p, "cpu.work", CPU_WORK, { instances: 4 });
    const po = new PostOffice({}, p);
    await po.request({ to: "cpu.work", body: { ms: 1 } }, 20_000); // the first thread starts
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      const replies = await Promise.all(
        Array.from({ length: 4 }, () => po.request({ to: "cpu.work", body: { ms: 300 } }, 20_000)),
      );
      const bodies = replies.map((r) => r.body as { instance: number; thread: number });
      assert.deepEqual(bodies.map((b) => b.instance).sort(), [1, 2, 3, 4]);
      assert.equal(new Set(bodies.map((b) => b.thread)).size, 4, "four threads");
    } finally {
      clearInterval(timer);
    }
    // A blocked loop would not tick at all while they computed (at least 300 ms).
    assert.ok(ticks >= 10, `${ticks} timer ticks while they computed`);
  });

  it("run one event per thread at a time, the others waiting in the route's queue", async () => {
    const p = testPlatform();
    await using _w = registerWorker(p, "cpu.one", CPU_WORK);
    const po = new PostOffice({}, p);
    const replies = po.request(
      Array.from({ length: 3 }, () => ({ to: "cpu.one", body: { ms: 20 } })),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 5));
    const info = p.routes().find((r) => r.route === "cpu.one")!;
    assert.equal(info.busy, 1);
    assert.equal(info.backlog, 2);
    assert.ok((await replies).every((r) => (r.body as { instance: number }).instance === 1));
  });

  it("turn a thrown error into an error reply with its status; bad input fails clearly", async () => {
    const p = testPlatform();
    await using _w = registerWorker(p, "cpu.fail", CPU_WORK, { instances: 2 });
    const po = new PostOffice({}, p);
    const failed = await po.request({ to: "cpu.fail", headers: { fail: "yes" }, body: {} }, 20_000);
    assert.equal(failed.status, 422);
    assert.equal(failed.body, "asked to fail: yes");
    const unclonable = await po.request({ to: "cpu.fail", body: { f: () => 1 } }, 20_000);
    assert.equal(unclonable.status, 400);
    assert.match(String(unclonable.body), /Cannot pass the event to a worker/);
  });

  it("fail requests with 500 when the module has no default function, and stop with the platform", async () => {
    const p = testPlatform();
    const noDefault = new URL("./fixtures/no_default.ts", import.meta.url);
    registerWorker(p, "cpu.broken", noDefault);
    const po = new PostOffice({}, p);
    const reply = await po.request({ to: "cpu.broken", body: {} }, 20_000);
    assert.equal(reply.status, 500);
    assert.match(String(reply.body), /no_default\.ts has no default export function/);
    await p.stop({ gracePeriod: 1000 });
    const after = await po.request({ to: "cpu.broken", body: {} }, 20_000);
    assert.equal(after.status, 503, "its threads ended with the platform");
  });
});
