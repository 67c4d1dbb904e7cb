import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { disconnectWithin, GroupReader } from "./reader.ts";
import type { GroupReaderLink } from "./reader.ts";
import { configure, reset } from "@logtape/logtape";
import type { LogRecord } from "@logtape/logtape";

// minimesh's log lines, as text, until `stop()`.
async function captureLogs(): Promise<{ lines: string[]; stop: () => Promise<void> }> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r: LogRecord) => lines.push(r.message.map(String).join("")) },
    loggers: [
      { category: ["minimesh"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  return { lines, stop: () => reset() };
}

// A kafkajs client whose consumers never finish disconnecting, as kafkajs's may when the broker
// went away (a consumer retrying its connection, or waiting for a fetch).
const stuck = {
  consumer: () => ({
    events: { FETCH: "fetch", GROUP_JOIN: "join", CRASH: "crash" },
    on() {},
    disconnect: () => new Promise<void>(() => {}),
  }),
} as unknown as Kafka;

const link = {
  counters: { produceRequests: 0, recordsSent: 0, batchesRead: 0, recordsRead: 0 },
  clientId: "reader-test",
  patched: Promise.resolve(),
  stopped() {},
} as unknown as GroupReaderLink;

describe("the kafkajs reader's stop", () => {
  it("ends within its bound when kafkajs never finishes disconnecting, and says so", async () => {
    const logs = await captureLogs();
    try {
      const reader = new GroupReader(stuck, link, "t", 3, () => {}, 200);
      const began = Date.now();
      await reader.stop();
      const took = Date.now() - began;
      assert.ok(took >= 190 && took < 2000, `stopped after ${took} ms`);
      assert.ok(
        logs.lines.some((l) => /consumer of t-3 did not disconnect within 0.2 s/.test(l)),
        logs.lines.join("\n"),
      );
    } finally {
      await logs.stop();
    }
  });

  it("waits for a disconnect that ends in time, and takes a failed one as done", async () => {
    const logs = await captureLogs();
    try {
      let ended = false;
      await disconnectWithin("A client", async () => {
        await new Promise((r) => setTimeout(r, 50));
        ended = true;
      }, 1000);
      assert.ok(ended);
      await disconnectWithin("A client", () => Promise.reject(new Error("gone")), 1000);
      assert.deepEqual(logs.lines.filter((l) => /did not disconnect/.test(l)), []);
    } finally {
      await logs.stop();
    }
  });
});
