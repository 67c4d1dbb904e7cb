import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ORIGINAL,
  patchConsumerGroup,
  patchRequestQueue,
  REFUSED_FETCH_PAUSE_MS,
} from "./_patch.ts";
import type { ConsumerGroupClass, RequestQueueClass } from "./_patch.ts";

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
