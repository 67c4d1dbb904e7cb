import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { NetworkError, ResponseError } from "@platformatic/kafka";
import { isNetwork, LeaderAway, retriable } from "./_errors.ts";

// A produce answer with `code` (Kafka's error code) for one partition, as the library makes it.
const produceError = (code: number) =>
  new ResponseError(0, 11, { "/topics/0/partitions/0": [code, null] }, {});

describe("which failed produces are tried again", () => {
  it("tries again what a moved leader refused, what may be written, and a failed connection", () => {
    for (
      const [code, name] of [
        [6, "NOT_LEADER_OR_FOLLOWER"],
        [19, "NOT_ENOUGH_REPLICAS"],
        [7, "REQUEST_TIMED_OUT"],
        [20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"],
      ] as const
    ) assert.ok(retriable(produceError(code)), name);
    assert.ok(retriable(new NetworkError("Connection closed")));
    assert.ok(retriable(new LeaderAway("10.0.0.1:9092")));
    assert.ok(isNetwork(new LeaderAway("10.0.0.1:9092")));
  });

  it("does not try again what cannot succeed", () => {
    for (
      const [code, name] of [
        [10, "MESSAGE_TOO_LARGE"],
        [29, "TOPIC_AUTHORIZATION_FAILED"],
        [87, "INVALID_RECORD"],
      ] as const
    ) assert.ok(!retriable(produceError(code)), name);
    assert.ok(!retriable(new Error("anything else")));
  });
});
