import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Availability } from "./_availability.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function silentAfter(ms: number) {
  let dropped = 0;
  const a = new Availability(["b:9092"], () => 1, () => new Promise(() => {}), {
    ms,
    drop: () => dropped++,
  });
  return { a, dropped: () => dropped };
}

describe("Availability: a silent broker", () => {
  it("counts Kafka gone when a request waits past the silence with nothing heard", async () => {
    const { a, dropped } = silentAfter(150);
    const done = a.waiting(0);
    await sleep(100);
    assert.equal(a.available, true, "not before the silence");
    await sleep(250);
    assert.equal(a.available, false);
    assert.equal(dropped(), 1, "the waiting connections were ended");
    assert.equal(a.signal.aborted, true);
    done();
    a.close();
  });

  it("gives a fetch its wait before the silence counts", async () => {
    const { a } = silentAfter(100);
    const done = a.waiting(300);
    await sleep(250);
    assert.equal(a.available, true);
    done(); // answered within its wait
    await sleep(300);
    assert.equal(a.available, true);
    a.close();
  });

  it("is not silence while other answers arrive (a slow partition, not a silent broker)", async () => {
    const { a, dropped } = silentAfter(100);
    const done = a.waiting(0);
    for (let i = 0; i < 8; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(a.available, true);
    assert.equal(dropped(), 0);
    done();
    a.close();
  });

  it("does not take its own pause (a blocked event loop) for Kafka's silence", async () => {
    const { a, dropped } = silentAfter(150);
    const done = a.waiting(0);
    const until = Date.now() + 600;
    while (Date.now() < until) { /* blocked, as after SIGSTOP */ }
    await sleep(50); // answers that waited in the socket arrive now
    a.up();
    done();
    await sleep(200);
    assert.equal(a.available, true);
    assert.equal(dropped(), 0);
    a.close();
  });

  it("never counts silence when none is set", async () => {
    const a = new Availability(["b:9092"], () => 1, () => Promise.resolve());
    const done = a.waiting(0);
    await sleep(150);
    assert.equal(a.available, true);
    done();
    a.close();
  });
});
