import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ORIGINAL,
  patchConsumerGroup,
  patchRequestQueue,
  REFUSED_FETCH_PAUSE_MS,
} from "./_kafkajs_patch.ts";
import type { ConsumerGroupClass, RequestQueueClass } from "./_kafkajs_patch.ts";

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
      cluster = { refreshMetadata: () => Promise.resolve(void calls.push("refresh")) };
      recoverFromFetch(e: Error) {
        // as kafkajs: KafkaJSBrokerNotFound refreshes; refreshMetadata; other errors throw
        if (e.name === "KafkaJSBrokerNotFound") return this.cluster.refreshMetadata();
        throw e;
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

  it("leaves a consumer group of another shape alone", () => {
    class Other {
      recoverFromFetch() {
        return "something else";
      }
    }
    assert.equal(patchConsumerGroup(Other as ConsumerGroupClass), "skipped");
    assert.equal(patchConsumerGroup(undefined), "skipped");
  });
});
