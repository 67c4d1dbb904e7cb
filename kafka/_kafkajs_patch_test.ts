import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ORIGINAL, patchRequestQueue } from "./_kafkajs_patch.ts";
import type { RequestQueueClass } from "./_kafkajs_patch.ts";

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
