import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { throttled } from "./_log.ts";

describe("throttled", () => {
  it("logs each message at most perSecond times a second, then says how many it left out", () => {
    const lines: string[] = [];
    const log = {
      warn: (m: string, p: Record<string, unknown>) => lines.push(`${m} ${JSON.stringify(p)}`),
    } as unknown as Logger;
    const warn = throttled(log, "warn", 3);
    for (let i = 0; i < 1000; i++) warn("Refused {n}", { n: i });
    warn("Another kind", {});
    assert.equal(lines.length, 4, lines.join("\n"));
    // A second later the next line carries the count.
    const realNow = Date.now;
    Date.now = () => realNow() + 1100;
    try {
      warn("Refused {n}", { n: 1000 });
    } finally {
      Date.now = realNow;
    }
    assert.match(lines.at(-1)!, /\(\{left\} more like it were not logged\) .*"left":997/);
  });
});
