import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NetworkError, protocolErrorsCodesById, ResponseError } from "@platformatic/kafka";
import { isNetwork, LeaderAway, retriable } from "./_errors.ts";

// A produce answer with `code` (Kafka's error code) for one partition, as the library makes it.
const produceError = (code: number) =>
  new ResponseError(0, 11, { "/topics/0/partitions/0": [code, null] }, {});

/** What a produce may succeed on when tried again: not written, or perhaps written. */
const TRIED_AGAIN = new Set([
  "NOT_LEADER_OR_FOLLOWER",
  "LEADER_NOT_AVAILABLE",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "FENCED_LEADER_EPOCH",
  "UNKNOWN_LEADER_EPOCH",
  "NOT_ENOUGH_REPLICAS",
  "KAFKA_STORAGE_ERROR",
  "REQUEST_TIMED_OUT",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
]);

describe("which failed produces are tried again", () => {
  it("every broker error the library knows: only those a later try may cure", () => {
    const codes = Object.entries(protocolErrorsCodesById) as [string, string | null][];
    assert.ok(codes.length > 100, `${codes.length} error codes`);
    for (const [code, id] of codes) {
      if (id === null || Number(code) <= 0) continue; // no error
      assert.equal(retriable(produceError(Number(code))), TRIED_AGAIN.has(id), id);
    }
  });

  it("tries again after a failed connection, or a leader that takes none", () => {
    assert.ok(retriable(new NetworkError("Connection closed")));
    assert.ok(retriable(new LeaderAway("10.0.0.1:9092")));
    assert.ok(isNetwork(new LeaderAway("10.0.0.1:9092")));
    assert.ok(!retriable(new Error("anything else")));
  });
});
