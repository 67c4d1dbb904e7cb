import { afterEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Availability, LEADER_CHECK_MS, leaderAnswers } from "./_availability.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Fake time for a test of the checks alone, which run on timers and `Date.now()`: a real sleep
 * stretches by hundreds of ms on a loaded machine (the unit tests run four files on two cores),
 * more than the silences under test. Returns the test's `sleep`: time passes in steps of
 * {@link STEP_MS}, each step's timers run, then the promises they settled.
 */
function fakeTime(): (ms: number) => Promise<void> {
  mock.timers.enable({
    apis: ["setTimeout", "setInterval", "setImmediate", "Date"],
    now: Date.now(),
  });
  return async (ms) => {
    for (let left = ms; left > 0; left -= STEP_MS) {
      mock.timers.tick(Math.min(STEP_MS, left));
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
  };
}
const STEP_MS = 5;
afterEach(() => mock.timers.reset());

// A client of one broker whose silence counts after `ms`; the question asked of Kafka while it
// is down (or to check a late produce) is answered when `answers`, else never.
function silentAfter(ms: number, answers = false) {
  let dropped = 0;
  let asked = 0;
  const ask = () => (asked++, answers ? Promise.resolve() : new Promise(() => {}));
  const a = new Availability(["b:9092"], () => 1, ask, { ms, drop: () => dropped++ });
  return { a, dropped: () => dropped, asked: () => asked };
}

describe("Availability: a silent broker", () => {
  it("counts Kafka gone when a request waits past the silence with nothing heard", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(150);
    const done = a.waiting(0);
    await sleep(100);
    assert.equal(a.available, true, "not before the silence");
    await sleep(100); // 50 ms past it: the first check, at 150 ms, finds it
    assert.equal(a.available, false);
    assert.equal(dropped(), 1, "the waiting connections were ended");
    assert.equal(a.signal.aborted, true);
    done();
    a.close();
  });

  it("gives a fetch its wait before the silence counts", async () => {
    const sleep = fakeTime();
    const { a } = silentAfter(100);
    const done = a.waiting(300);
    await sleep(250);
    assert.equal(a.available, true);
    done(); // answered within its wait
    await sleep(300);
    assert.equal(a.available, true);
    a.close();
  });

  it("still finds the silence of an idle client's later fetch once its earlier one is answered", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    const early = a.waiting(50);
    const late = a.waiting(300);
    await sleep(30);
    early(); // answered: the check follows the late fetch, due at 400 ms
    await sleep(250);
    assert.equal(a.available, true, "not before the late fetch's wait and the silence");
    await sleep(250);
    assert.equal(a.available, false);
    assert.equal(dropped(), 1);
    late();
    a.close();
  });

  it("asks Kafka before it counts one late answer of an idle client as silence", async () => {
    const sleep = fakeTime();
    const { a, dropped, asked } = silentAfter(100, true);
    await sleep(300); // idle: nothing was due, nothing heard
    const done = a.waiting(0); // a produce waiting for replicas
    await sleep(250);
    assert.ok(asked() >= 1, "asked");
    assert.equal(a.available, true, "Kafka answered the question");
    assert.equal(dropped(), 0, "no connection ended");
    await sleep(150); // still unanswered, but Kafka was heard since: not silence
    assert.equal(a.available, true);
    done();
    a.close();
  });

  it("counts an idle client's late answer as silence when Kafka answers no question either", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    await sleep(300);
    const done = a.waiting(0);
    await sleep(150);
    assert.equal(a.available, true, "not before the question's time is up");
    await sleep(250);
    assert.equal(a.available, false);
    assert.equal(dropped(), 1);
    done();
    a.close();
  });

  it("is not silence while other answers arrive (a slow partition, not a silent broker)", async () => {
    const sleep = fakeTime();
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

  it("renews the connections for a request far past its bound while others are answered (a dead connection)", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    const produce = a.waiting(0, { boundMs: 2000 }); // a produce may wait for replicas up to its timeout
    const fetch = a.waiting(100);
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 0, "not within its wait and three silences");
    for (let i = 0; i < 4; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 1, "renewed once");
    assert.equal(a.available, true, "Kafka answers: not gone");
    for (let i = 0; i < 6; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 1, "the produce within its timeout is no reason");
    fetch();
    produce();
    // Its timeout and three silences (400 ms), and four times the usual time (the produce
    // that took ~0.9 s made the usual time).
    const late = a.waiting(0, { boundMs: 100 });
    const since = Date.now();
    while (dropped() < 2 && Date.now() - since < 6000) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 2, "a produce past its timeout is");
    assert.ok(Date.now() - since >= 2500, `not before four usual times (${Date.now() - since} ms)`);
    late();
    a.close();
  });

  it("gives a produce queued behind others on its connection a timeout from its connection's last answer", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    // Its bound is 200 ms from when its connection last answered (here: as it left); the
    // connection answers the requests before it one by one, each within 200 ms.
    let progressAt = Date.now();
    const since = progressAt;
    const queued = a.waiting(0, { boundMs: () => progressAt - since + 200 });
    // Other requests are answered meanwhile: the cluster is not silent.
    const othersAnswered = async (ms: number, progress: boolean) => {
      for (const end = Date.now() + ms; Date.now() < end;) {
        await sleep(50);
        a.up();
        if (progress && Date.now() - progressAt >= 150) progressAt = Date.now();
      }
    };
    await othersAnswered(1000, true);
    assert.equal(dropped(), 0, "its connection answers the ones before it: not stuck at 1 s");
    // The connection answers nothing more, however many wait on it: its timeout and three
    // silences (500 ms) after its last answer it counts as dead.
    await othersAnswered(300, false);
    assert.equal(dropped(), 0, "not before its timeout and three silences");
    await othersAnswered(500, false);
    assert.equal(dropped(), 1, "past them it is");
    queued();
    a.close();
  });

  it("renews the connections to a broker that takes none while a produce waits on it (its host gone)", async () => {
    // A broker that takes connections, and an address that takes none (its port closed).
    const server = createServer((s) => s.destroy()).listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const up = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => closed.once("listening", r));
    const gone = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((r) => closed.close(r));
    const dropped: string[] = [];
    let onGone = () => {};
    const a = new Availability([up, gone], () => 2, () => new Promise(() => {}), {
      ms: 300, // in real time (real sockets): a stall under 250 ms is no silence
      drop: () => dropped.push("all"),
      // Its produce fails then (and is tried again on the leader named then).
      dropBroker: (b) => (dropped.push(b), b === gone && onGone()),
    });
    const onUp = a.waiting(0, { boundMs: 5000, brokers: () => [up] });
    onGone = a.waiting(0, { boundMs: 5000, brokers: () => [gone] });
    for (let i = 0; i < 16; i++) {
      await sleep(50);
      a.up();
    }
    assert.deepEqual(dropped, [gone], "only the connections to the broker that takes none");
    assert.equal(a.failing(gone), true);
    assert.equal(a.available, true, "the other broker answers: Kafka is not gone");
    onUp();
    onGone();
    a.close();
    server.close();
  });

  it("does not ask the single broker of a cluster whether it takes connections", async () => {
    const sleep = fakeTime();
    const dropped: string[] = [];
    const a = new Availability(["127.0.0.1:1"], () => 1, () => new Promise(() => {}), {
      ms: 100,
      drop: () => dropped.push("all"),
      dropBroker: (b) => dropped.push(b),
    });
    const done = a.waiting(0, { boundMs: 5000, brokers: () => ["127.0.0.1:1"] });
    for (let i = 0; i < 10; i++) {
      await sleep(50);
      a.up();
    }
    assert.deepEqual(dropped, [], "no other broker could lead its partitions");
    done();
    a.close();
  });

  it("does not renew the connections when every request is as slow (an overloaded cluster)", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    // Requests answered after 300 ms each, one after another: the usual time.
    for (let i = 0; i < 4; i++) {
      const done = a.waiting(0, { boundMs: 100 });
      for (let j = 0; j < 6; j++) {
        await sleep(50);
        a.up();
      }
      done();
    }
    // One at 600 ms: past its timeout and three silences (400 ms), within four usual times.
    const slow = a.waiting(0, { boundMs: 100 });
    for (let i = 0; i < 12; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 0, "a slow cluster is no dead connection");
    for (let i = 0; i < 20; i++) {
      await sleep(50);
      a.up();
    }
    assert.equal(dropped(), 1, "far past the usual time it is");
    slow();
    a.close();
  });

  it("still notices the silence of a later request after the one its check was due for ended", async () => {
    const sleep = fakeTime();
    const { a } = silentAfter(100);
    const early = a.waiting(200);
    const late = a.waiting(400);
    await sleep(150);
    a.up();
    early(); // answered; the later one still waits (due at 500 ms)
    await sleep(300);
    assert.equal(a.available, true, "not before the later one is overdue");
    await sleep(400);
    assert.equal(a.available, false, "overdue with nothing heard: gone");
    late();
    a.close();
  });

  // In real time: fake timers (Deno's) run each at its own time, not late as after a pause.
  it("does not take its own pause (a blocked event loop) for Kafka's silence", async () => {
    const { a, dropped, asked } = silentAfter(150);
    const done = a.waiting(0);
    const until = Date.now() + 600;
    while (Date.now() < until) { /* blocked, as after SIGSTOP */ }
    await sleep(50); // answers that waited in the socket arrive now
    a.up();
    done();
    await sleep(200);
    assert.equal(a.available, true);
    assert.equal(dropped(), 0);
    assert.equal(asked(), 0, "nor was Kafka asked whether it answers");
    a.close();
  });

  it("leaves a long poll with a timeout of its own to it, and judges its failure there as overdue", async () => {
    const sleep = fakeTime();
    // No timer of ours: past its wait and the silence, nothing is judged until the poll ends.
    const quiet = silentAfter(100);
    const poll = quiet.a.waiting(300, { timeoutMs: 500 });
    await sleep(450);
    assert.equal(quiet.a.available, true, "no check of ours before the poll's own timeout");
    await sleep(60);
    poll(true); // failed at its own timeout, with nothing heard: Kafka is gone
    assert.equal(quiet.a.available, false);
    assert.equal(quiet.dropped(), 1);
    quiet.a.close();
    // With others answered meanwhile: a dead connection, renewed; Kafka stays available.
    // (Its wait and three silences, 600 ms, have passed: the rule for a dead connection.)
    const busy = silentAfter(100);
    const stuck = busy.a.waiting(300, { timeoutMs: 600 });
    for (let t = 0; t < 13; t++) {
      await sleep(50);
      busy.a.up();
    }
    stuck(true);
    assert.equal(busy.a.available, true);
    assert.equal(busy.dropped(), 1, "the connections were renewed");
    busy.a.close();
  });

  it("does not judge a long poll that failed before its timeout (a connection error) or was answered", async () => {
    const sleep = fakeTime();
    const { a, dropped } = silentAfter(100);
    const refused = a.waiting(300, { timeoutMs: 500 });
    await sleep(50);
    refused(true);
    const answered = a.waiting(300, { timeoutMs: 500 });
    await sleep(600);
    answered(false);
    assert.equal(a.available, true);
    assert.equal(dropped(), 0);
    a.close();
  });

  it("never counts silence when none is set", async () => {
    const sleep = fakeTime();
    const a = new Availability(["b:9092"], () => 1, () => Promise.resolve());
    const done = a.waiting(0);
    await sleep(150);
    assert.equal(a.available, true);
    done();
    a.close();
  });
});

describe("Availability: one silent broker of several", () => {
  it("stays available, renewing its connections, while another broker takes connections", async () => {
    const other = createServer((c) => c.destroy()).listen(0, "127.0.0.1");
    await new Promise((r) => other.once("listening", r));
    let dropped = 0;
    const brokers = [await closedPort(), `127.0.0.1:${(other.address() as AddressInfo).port}`];
    const a = new Availability(brokers, () => 2, () => new Promise(() => {}), {
      ms: 100,
      drop: () => dropped++,
    });
    try {
      const done = a.waiting(0);
      await sleep(400);
      assert.equal(a.available, true);
      assert.equal(dropped, 1, "the connections waiting on the silent broker were ended");
      done();
    } finally {
      a.close();
      other.close();
    }
  });

  it("counts Kafka gone when no broker takes a connection", async () => {
    const brokers = [await closedPort(), await closedPort()];
    const a = new Availability(brokers, () => 2, () => new Promise(() => {}), {
      ms: 100,
      drop: () => {},
    });
    try {
      const done = a.waiting(0);
      await sleep(400);
      assert.equal(a.available, false);
      done();
    } finally {
      a.close();
    }
  });
});

describe("Availability: a failing broker", () => {
  it("tells its listeners each time it turns unavailable or available, and only then", async () => {
    const sleep = fakeTime();
    const a = new Availability(["b1:9092", "b2:9092"], () => 2, () => new Promise(() => {}));
    const seen: boolean[] = [];
    const off = a.onChange(() => seen.push(a.available));
    try {
      a.down("connection failed", "b1:9092"); // one of two: a leader change
      a.up();
      assert.deepEqual(seen, []);
      a.down("connection failed", "b2:9092"); // both
      a.down("connection failed"); // still down
      a.up(); // an answer that may have been on its way: not yet
      assert.deepEqual(seen, [false]);
      await sleep(1050);
      a.up();
      a.up();
      assert.deepEqual(seen, [false, true]);
      off();
      a.down("connection failed");
      assert.deepEqual(seen, [false, true], "not after it stopped listening");
    } finally {
      a.close();
    }
  });

  it("says a broker fails from its connection's failure until a connection to it opens", () => {
    const a = new Availability(["b1:9092", "b2:9092"], () => 2, () => new Promise(() => {}));
    try {
      assert.equal(a.failing("b1:9092"), false);
      a.down("connection failed", "b1:9092");
      assert.equal(a.failing("b1:9092"), true);
      assert.equal(a.failing("b2:9092"), false, "only the one that failed");
      assert.equal(a.available, true, "one broker of two");
      a.reached("b1:9092");
      assert.equal(a.failing("b1:9092"), false);
    } finally {
      a.close();
    }
  });

  it("tells a leader that takes connections from one that refuses them, at once", async () => {
    const open = createServer((c) => c.destroy()).listen(0, "127.0.0.1");
    await new Promise((r) => open.once("listening", r));
    try {
      const port = (open.address() as AddressInfo).port;
      assert.equal(await leaderAnswers({ host: "127.0.0.1", port }), true);
      const closed = Number((await closedPort()).split(":")[1]);
      const t0 = Date.now();
      assert.equal(await leaderAnswers({ host: "127.0.0.1", port: closed }), false);
      assert.ok(Date.now() - t0 < LEADER_CHECK_MS, "a refusal is not waited out");
    } finally {
      open.close();
    }
  });
});

/** A port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<string> {
  const s = createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}
