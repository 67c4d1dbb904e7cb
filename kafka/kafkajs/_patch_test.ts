import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ORIGINAL,
  patchConsumerGroup,
  patchRequestQueue,
  patchRequestTimeouts,
  patchRunner,
  REFUSED_FETCH_PAUSE_MS,
} from "./_patch.ts";
import type {
  ConsumerGroupClass,
  RequestQueueClass,
  RunnerClass,
  TimeoutQueueClass,
} from "./_patch.ts";

// The shape of kafkajs 2.2.4's request queue, reduced to what the patch reads.
function fakeQueue() {
  let scheduled = 0;
  class Queue {
    pending: unknown[] = [];
    throttledUntil = -1;
    scheduleCheckPendingRequests() {
      if (this.pending.length >= 0 && this.throttledUntil >= -1) scheduled++;
    }
    checkPendingRequests() {}
  }
  return { Queue, scheduled: () => scheduled };
}

describe("the kafkajs idle-timer patch", () => {
  it("schedules a check only when requests wait or a throttle is set, and applies once", () => {
    const { Queue, scheduled } = fakeQueue();
    assert.equal(patchRequestQueue(Queue as RequestQueueClass), "applied");
    assert.equal(patchRequestQueue(Queue as RequestQueueClass), "already");
    const q = new Queue();
    q.scheduleCheckPendingRequests();
    assert.equal(scheduled(), 0, "idle: no timer");
    q.pending.push(1);
    q.scheduleCheckPendingRequests();
    q.pending = [];
    q.throttledUntil = Date.now() + 10_000;
    q.scheduleCheckPendingRequests();
    assert.equal(scheduled(), 2);
    assert.equal(
      typeof (Queue.prototype as unknown as Record<symbol, unknown>)[ORIGINAL],
      "function",
    );
  });

  it("leaves a request queue of another shape alone", () => {
    class Other {
      pending: unknown[] = [];
      throttledUntil = 0;
      scheduleCheckPendingRequests() {
        return "something else entirely";
      }
      checkPendingRequests() {}
    }
    const before = Other.prototype.scheduleCheckPendingRequests;
    assert.equal(patchRequestQueue(Other as RequestQueueClass), "skipped");
    assert.equal(Other.prototype.scheduleCheckPendingRequests, before);
    assert.equal(patchRequestQueue(undefined), "skipped");
  });
});

describe("the kafkajs request-timeout patch", () => {
  // kafkajs 2.2.4's own request queue, with a timer census: the callbacks of the timers it sets.
  async function queue(o: { timeoutMs: number; connected?: () => boolean }) {
    const m = await import("kafkajs/src/network/requestQueue/index.js");
    // deno-lint-ignore no-explicit-any
    const Queue = (m.default ?? m) as any;
    // Both patches of the request queue, as `patchKafkajs` applies them.
    assert.match(patchRequestQueue(Queue as RequestQueueClass), /applied|already/);
    assert.match(patchRequestTimeouts(Queue as TimeoutQueueClass), /applied|already/);
    const silent = () => {};
    const q = new Queue({
      requestTimeout: o.timeoutMs,
      enforceRequestTimeout: true,
      clientId: "test",
      broker: "127.0.0.1:1",
      logger: { debug: silent, info: silent, warn: silent, error: silent },
      isConnected: o.connected ?? (() => true),
    });
    // deno-lint-ignore no-explicit-any
    const request = (correlationId: number, settled: (r: string) => void): any => ({
      entry: {
        correlationId,
        apiName: "Fetch",
        apiKey: 1,
        apiVersion: 11,
        resolve: () => settled("answered"),
        reject: (e: Error) => settled(e.name),
      },
      expectResponse: true,
      sendRequest: () => {},
    });
    return { q, request };
  }

  // Runs `body` counting the timer callbacks that run meanwhile (kafkajs and the patch use the
  // global timers).
  async function counting(body: () => Promise<void>): Promise<number> {
    const { setTimeout: st, setInterval: si } = globalThis;
    let fired = 0;
    // deno-lint-ignore no-explicit-any
    const wrap = (orig: any) => (fn: () => void, ms?: number) => orig(() => (fired++, fn()), ms);
    // deno-lint-ignore no-explicit-any
    const g = globalThis as any;
    g.setTimeout = wrap(st);
    g.setInterval = wrap(si);
    try {
      await body();
    } finally {
      g.setTimeout = st;
      g.setInterval = si;
    }
    return fired;
  }

  it("times out a request when it is due, without looking every 100 ms meanwhile", async () => {
    const { q, request } = await queue({ timeoutMs: 600 });
    const outcomes: [string, number][] = [];
    const t0 = Date.now();
    const fired = await counting(async () => {
      q.scheduleRequestTimeoutCheck(); // as kafkajs on connect
      await new Promise<void>((done) => {
        q.push(request(1, (r: string) => (outcomes.push([r, Date.now() - t0]), done())));
      });
    });
    assert.equal(outcomes[0][0], "KafkaJSRequestTimeoutError");
    assert.ok(
      outcomes[0][1] >= 600 && outcomes[0][1] < 900,
      `timed out after ${outcomes[0][1]} ms`,
    );
    // kafkajs's own interval: six checks before this one (fails without the patch).
    assert.ok(fired <= 2, `${fired} timer callbacks for one request's 600 ms`);
    q.destroy();
  });

  it("answered requests leave no check behind, and a later one is timed from its own start", async () => {
    const { q, request } = await queue({ timeoutMs: 300 });
    q.scheduleRequestTimeoutCheck();
    const first: string[] = [];
    q.push(request(1, (r: string) => first.push(r)));
    q.fulfillRequest({ correlationId: 1, payload: null, size: 0 });
    assert.deepEqual(first, ["answered"]);
    await new Promise((r) => setTimeout(r, 200));
    const t1 = Date.now();
    const second = await new Promise<[string, number]>((done) => {
      q.push(request(2, (r: string) => done([r, Date.now() - t1])));
    });
    assert.equal(second[0], "KafkaJSRequestTimeoutError");
    assert.ok(second[1] >= 300, `timed out ${second[1]} ms after it was sent`);
    q.destroy();
  });

  it("a queue destroyed with a check armed (a disconnect) still times out what it takes next", async () => {
    const { q, request } = await queue({ timeoutMs: 200 });
    q.scheduleRequestTimeoutCheck();
    q.push(request(1, () => {}));
    q.destroy(); // as kafkajs on disconnect: the armed check is cleared
    const t0 = Date.now();
    const r = await new Promise<[string, number]>((done) => {
      q.push(request(2, (x: string) => done([x, Date.now() - t0])));
    });
    assert.equal(r[0], "KafkaJSRequestTimeoutError");
    assert.ok(r[1] >= 200 && r[1] < 600, `timed out after ${r[1]} ms`);
    q.destroy();
  });

  it("leaves a request queue of another shape alone", () => {
    class Other {
      scheduleRequestTimeoutCheck() {
        return "something else";
      }
      push() {}
      destroy() {}
    }
    const before = Other.prototype.scheduleRequestTimeoutCheck;
    assert.equal(patchRequestTimeouts(Other as TimeoutQueueClass), "skipped");
    assert.equal(Other.prototype.scheduleRequestTimeoutCheck, before);
    assert.equal(patchRequestTimeouts(undefined), "skipped");
  });
});

describe("the kafkajs refused-fetch patch", () => {
  // kafkajs 2.2.4's consumer group, reduced to what the patch reads and calls.
  function fakeGroup() {
    const calls: string[] = [];
    class Group {
      groupId = "g";
      lastRequest = 0;
      coordinator: unknown = "dead broker";
      heartbeatError: Error | undefined;
      cluster = {
        refreshMetadata: () => Promise.resolve(void calls.push("refresh")),
        findGroupCoordinator: () => Promise.resolve(void calls.push("find")).then(() => "new"),
      };
      recoverFromFetch(e: Error) {
        // as kafkajs: KafkaJSBrokerNotFound refreshes; refreshMetadata; other errors throw
        if (e.name === "KafkaJSBrokerNotFound") return this.cluster.refreshMetadata();
        throw e;
      }
      heartbeat(_args: unknown) {
        return this.heartbeatError ? Promise.reject(this.heartbeatError) : Promise.resolve();
      }
    }
    return { Group, calls };
  }

  it("turns a refused fetch into a metadata refresh, and leaves other errors as they were", async () => {
    const { Group, calls } = fakeGroup();
    assert.equal(patchConsumerGroup(Group as ConsumerGroupClass), "applied");
    assert.equal(patchConsumerGroup(Group as ConsumerGroupClass), "already");
    const g = new Group();
    const refused = Object.assign(new Error("connect ECONNREFUSED"), {
      name: "KafkaJSConnectionError",
    });
    const t0 = Date.now();
    await g.recoverFromFetch(refused);
    assert.ok(Date.now() - t0 >= REFUSED_FETCH_PAUSE_MS - 5, "it pauses first");
    assert.deepEqual(calls, ["refresh"]);
    const other = Object.assign(new Error("boom"), { name: "KafkaJSProtocolError" });
    await assert.rejects(async () => await g.recoverFromFetch(other), /boom/);
  });

  it("a refused heartbeat looks for the new coordinator and does not stop the fetches", async () => {
    const { Group, calls } = fakeGroup();
    patchConsumerGroup(Group as ConsumerGroupClass);
    const g = new Group();
    g.heartbeatError = Object.assign(new Error("connect ECONNREFUSED"), {
      name: "KafkaJSConnectionError",
    });
    await g.heartbeat({ interval: 1000 }); // resolves: the fetch loop goes on
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(calls, ["find"]);
    assert.equal(g.coordinator, "new");
    assert.ok(g.lastRequest > 0);
    g.heartbeatError = Object.assign(new Error("rebalancing"), { name: "KafkaJSProtocolError" });
    await assert.rejects(g.heartbeat({ interval: 1000 }), /rebalancing/);
  });

  it("leaves a consumer group of another shape alone", () => {
    class Other {
      recoverFromFetch() {
        return "something else";
      }
      heartbeat() {}
    }
    assert.equal(patchConsumerGroup(Other as ConsumerGroupClass), "skipped");
    assert.equal(patchConsumerGroup(undefined), "skipped");
  });
});

describe("the kafkajs stopped-fetch patch", () => {
  it("ends a fetcher that kafkajs's fetch manager starts after its runner stopped, instead of spinning", async () => {
    // The shape of kafkajs 2.2.4's runner, reduced to its fetch; unpatched, a stopped runner
    // answers nothing at once (bounded here, so that the test ends).
    class Runner {
      running = true;
      stoppedAsks = 0;
      pending: PromiseWithResolvers<unknown[]>[] = [];
      async fetch(_nodeId: number): Promise<unknown[]> {
        if (!this.running) {
          if (++this.stoppedAsks > 10_000) throw new Error("spun");
          return [];
        }
        const w = Promise.withResolvers<unknown[]>();
        this.pending.push(w);
        return await w.promise;
      }
    }
    assert.equal(patchRunner(Runner as RunnerClass), "applied");
    const runner = new Runner();
    const mod = await import("kafkajs/src/consumer/fetchManager.js");
    const createFetchManager = (mod.default ?? mod) as (o: unknown) => {
      start(): Promise<void>;
      stop(): Promise<void>;
    };
    const logger = {
      namespace: () => logger,
      debug() {},
      info() {},
      warn() {},
      error() {},
    };
    let nodeIds = [1, 2];
    const manager = createFetchManager({
      logger,
      getNodeIds: () => nodeIds,
      fetch: (nodeId: number) => runner.fetch(nodeId),
      handler: async () => {},
      concurrency: 1,
    });
    const started = manager.start();
    started.catch(() => {});
    const turn = () => new Promise((r) => setTimeout(r, 0));
    await turn();
    assert.equal(runner.pending.length, 2, "a fetcher per broker, each fetching");
    // Broker 2 leaves the metadata (its kill -9): fetcher 2's next fetch starts a rebalance.
    nodeIds = [1];
    runner.pending[1].resolve([]);
    await turn();
    // The consumer stops meanwhile, then fetcher 1's fetch answers: the rebalance goes on.
    runner.running = false;
    await manager.stop();
    runner.pending[0].resolve([]);
    await assert.rejects(started, /The consumer stopped: this fetcher ends/);
    assert.equal(runner.stoppedAsks, 0);
  });
});
