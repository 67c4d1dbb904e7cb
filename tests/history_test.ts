// The fault suite's checker (tests/_history.ts) on generated histories: every anomaly planted in
// a random history is found, counted once, and a clean history shows none.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { check } from "./_history.ts";
import type { History } from "./_history.ts";

/** A seeded generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Planted {
  histories: History[];
  lost: string[];
  twice: string[];
  retried: string[];
  wrong: string[];
  failed: number;
  handledTwice: string[];
}

/** A caller and two workers; each request and event gets the anomalies `rnd` picks. */
function generate(seed: number, n: number, anomalies: boolean): Planted {
  const rnd = random(seed);
  const caller: string[] = [], w1: string[] = [], w2: string[] = [];
  const p: Planted = {
    histories: [],
    lost: [],
    twice: [],
    retried: [],
    wrong: [],
    failed: 0,
    handledTwice: [],
  };
  const t0 = 1_700_000_000_000;
  w1.push(`${t0} JOINED o1 t.0001-001`);
  w2.push(`${t0} JOINED o2 t.0001-002`);
  for (let i = 1; i <= n; i++) {
    const at = t0 + i * 50, id = `c-${i}`;
    const worker = rnd() < 0.5 ? w1 : w2;
    caller.push(`${at} REQ ${id}`, `${at} SENT ${id}`);
    const roll = anomalies ? rnd() : 1;
    if (roll < 0.05) {
      caller.push(`${at + 5000} FAIL ${id} 408`);
      p.failed++;
    } else if (roll < 0.08) {
      worker.push(`${at + 3} EXEC ${id} c`, `${at + 9} EXEC ${id} c`);
      caller.push(`${at + 10} OK ${id} w`);
      p.twice.push(id);
    } else if (roll < 0.1) {
      worker.push(`${at + 3} EXEC ${id} c`);
      caller.push(`${at + 10} WRONG ${id} {"id":"c-1"}`);
      p.wrong.push(id);
    } else if (roll < 0.13) {
      // Retried on the other worker; the first one ran it too, before or after the retry.
      const other = worker === w1 ? w2 : w1;
      other.push(`${at + 4000} EXEC ${id} c retry`);
      worker.push(`${at + (rnd() < 0.5 ? 3 : 20_000)} EXEC ${id} c`);
      caller.push(`${at + 4010} OK ${id} w`);
      p.retried.push(id);
    } else {
      worker.push(`${at + 3} EXEC ${id} c`);
      caller.push(`${at + 10} OK ${id} w`);
    }
    caller.push(`${at + 2} ACK ${id}`);
    const eventRoll = anomalies ? rnd() : 1;
    if (eventRoll < 0.04) p.lost.push(id);
    else if (eventRoll < 0.07) {
      worker.push(`${at + 4} GOT ${id}`, `${at + 30_000} GOT ${id}`);
      p.handledTwice.push(id);
    } else worker.push(`${at + 4} GOT ${id}`);
  }
  // Lines arrive per process in time order; the checker sorts them across processes.
  const sorted = (lines: string[]) =>
    lines.sort((a, b) => Number(a.slice(0, 13)) - Number(b.slice(0, 13)));
  p.histories = [
    { name: "caller", lines: sorted(caller) },
    { name: "w1", lines: sorted(w1) },
    { name: "w2", lines: sorted(w2) },
  ];
  return p;
}

describe("the fault suite's checker", () => {
  it("finds every planted anomaly, once, in 50 random histories", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const p = generate(seed, 400, true);
      const r = check(p.histories);
      const why = `seed ${seed}`;
      assert.equal(r.requests, 400, why);
      assert.deepEqual(r.executedTwice.sort(), p.twice.sort(), why);
      assert.deepEqual(r.retriedTwice.sort(), p.retried.sort(), why);
      assert.deepEqual(r.wrong.map((w) => w.split(" ")[0]).sort(), p.wrong.sort(), why);
      assert.deepEqual(r.lost.sort(), p.lost.sort(), why);
      assert.deepEqual(r.handledTwice.sort(), p.handledTwice.sort(), why);
      assert.equal(r.failed["408"] ?? 0, p.failed, why);
      assert.equal(r.failures.length, p.failed, why);
      assert.ok(r.failures.every((f) => f.status === "408" && f.at > 0), why);
      assert.equal(r.ok + p.failed + p.wrong.length, 400, why);
      assert.deepEqual(r.leasesHeldTwice, [], why);
    }
  });

  it("a clean history shows nothing, and is served from its first request", () => {
    const p = generate(7, 200, false);
    const r = check(p.histories);
    assert.deepEqual(
      [r.wrong, r.executedTwice, r.retriedTwice, r.lost, r.handledTwice, r.leasesHeldTwice],
      [[], [], [], [], [], []],
    );
    assert.equal(r.servedFrom, 1_700_000_000_000 + 50);
  });

  it("counts a window's requests only, and their executions whenever they came", () => {
    const p = generate(3, 100, false);
    const from = 1_700_000_000_000 + 50 * 40, to = from + 50 * 20;
    const r = check(p.histories, from, to);
    assert.equal(r.requests, 20);
    assert.equal(r.ok, 20);
    assert.equal(r.acked, 20);
  });

  it("sees one lease held by two processes, and only while both held it", () => {
    const t = 1_700_000_000_000;
    const r = check([
      { name: "a", lines: [`${t} JOINED oa x-001`, `${t + 5000} TOPIC x-003`] },
      { name: "b", lines: [`${t + 1000} JOINED ob x-002`, `${t + 3000} TOPIC x-001`] },
      { name: "c", lines: [`${t + 6000} JOINED oc x-001`] },
    ]);
    assert.deepEqual(r.leasesHeldTwice, [
      `x-001 a b ${t + 3000}..${t + 5000}`,
      `x-001 b c ${t + 6000}..Infinity`,
    ]);
  });

  it("a request still failing at the end has no served-from time", () => {
    const t = 1_700_000_000_000;
    const r = check([{
      name: "c",
      lines: [`${t} REQ 1`, `${t + 5} OK 1 w`, `${t + 50} REQ 2`, `${t + 60} FAIL 2 503`],
    }]);
    assert.equal(r.servedFrom, undefined);
    assert.deepEqual(r.failed, { "503": 1 });
  });
});
