// A starting monitor's catch-up (presence/bootstrap.ts): history before its own download, the
// table meant for it, and the Java monitors' answers it waits for.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Bootstrap } from "../presence/bootstrap.ts";
import type { MonitorMessage } from "../presence/control.ts";
import type { JavaMessage } from "../presence/java_monitor.ts";

const me = "me";
const java = (m: JavaMessage, ours = false): MonitorMessage => ({ type: "java", java: m, ours });
const started = () => {
  const b = new Bootstrap(me);
  b.take(java({ type: "monitor_alive", origin: "j1", apps: [] }), 1n); // heard in the history
  b.take({ type: "alive", monitor: "ts1", version: "", started: "" }, 2n);
  assert.equal(b.started, false);
  b.take({ type: "download", monitor: me }, 3n);
  assert.equal(b.started, true);
  return b;
};

describe("Bootstrap", () => {
  it("keeps nothing from before its own download, everything after", () => {
    const b = started();
    b.take({ type: "alive", monitor: "ts1", version: "", started: "" }, 4n);
    assert.deepEqual(b.after(-1n).map(([o]) => o), [4n]);
  });

  it("waits for each Java monitor of the history, and its applications when it lists any", () => {
    const b = started();
    assert.equal(b.javaAnswered, false, "j1 has not answered");
    b.take(java({ type: "monitor_alive", origin: "j1", apps: ["a1"] }), 4n);
    assert.equal(b.javaAnswered, false, "j1 listed an application: its put of several is due");
    b.take(java({ type: "puts", origin: "j1", apps: {} }, true), 5n);
    assert.equal(b.javaAnswered, false, "a TypeScript monitor's copy is no answer");
    b.take(java({ type: "puts", origin: "j1", apps: { a1: {} } }), 6n);
    assert.equal(b.javaAnswered, true);
  });

  it("takes the applications before the list", () => {
    const b = started();
    b.take(java({ type: "puts", origin: "j1", apps: { a1: {} } }), 4n);
    b.take(java({ type: "monitor_alive", origin: "j1", apps: ["a1"] }), 5n);
    assert.equal(b.javaAnswered, true);
  });

  it("has nothing to wait for without Java monitors, once started", () => {
    const b = new Bootstrap(me);
    assert.equal(b.javaAnswered, false, "not before its own download");
    b.take({ type: "download", monitor: me }, 1n);
    assert.equal(b.javaAnswered, true);
  });

  it("completes a table in parts meant for it, as of its offset", () => {
    const b = started();
    const part = (n: number, origin: string): MonitorMessage => ({
      type: "snapshot",
      monitor: "ts1",
      for: me,
      asOf: "3",
      table: { connections: [], departed: [{ origin, verifier: "v", at: 1 }] },
      part: n,
      parts: 2,
    });
    assert.equal(b.take(part(1, "x"), 7n), undefined);
    const done = b.take(part(2, "y"), 8n);
    assert.deepEqual(done?.table.departed?.map((d) => d.origin).sort(), ["x", "y"]);
    assert.equal(done?.asOf, 3n);
  });
});
