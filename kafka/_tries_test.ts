import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { writeAll } from "./_tries.ts";
import type { Tries } from "./_tries.ts";

class Retriable extends Error {}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How a leader answers its part of one try. */
type Outcome = { kind: "ok" | "refused" | "fatal"; ms: number };

/**
 * A cluster whose leaders answer as `outcomes` say, in turn, each part sent as produceDirect
 * sends it (one per leader; with several, `written` and `failed` per part); it checks that no
 * record is sent while on its way or once written, and logs what it writes. Whether a retriable
 * error is tried again varies as `asks` say, in turn (Kafka judged away and back, say).
 */
function cluster(
  outcomes: Outcome[],
  leaders: number,
  maxAttempts: number,
  asks: boolean[] = [true],
) {
  const log: string[] = [];
  const onTheirWay = new Set<string>();
  const problems: string[] = [];
  let next = 0;
  let asked = 0;
  const tries: Tries<string> = {
    send(records, attempt, written, failed) {
      for (const r of records) {
        if (onTheirWay.has(r)) problems.push(`${r} sent while on its way`);
        if (log.includes(r)) problems.push(`${r} sent once written`);
        onTheirWay.add(r);
      }
      // Leadership may move between tries: a record's leader depends on the attempt.
      const parts = new Map<number, string[]>();
      for (const r of records) {
        const leader = (r.charCodeAt(1) + attempt) % leaders;
        parts.set(leader, [...parts.get(leader) ?? [], r]);
      }
      const several = parts.size > 1;
      return new Promise<void>((resolve, reject) => {
        let pending = parts.size;
        let failure: Error | undefined;
        if (pending === 0) return resolve();
        for (const list of parts.values()) {
          const o = outcomes[next++ % outcomes.length];
          setTimeout(() => {
            for (const r of list) onTheirWay.delete(r);
            if (o.kind === "ok") {
              log.push(...list);
              if (several) written(list);
            } else {
              const e = o.kind === "refused" ? new Retriable("not leader") : new Error("fatal");
              if (!several || !failed(list, e)) failure ??= e;
            }
            if (--pending > 0) return;
            if (failure === undefined) resolve();
            else reject(failure);
          }, o.ms);
        }
      });
    },
    mayRetry: (e) =>
      e instanceof Retriable && next < maxAttempts * 8 && asks[asked++ % asks.length],
    pause: () => sleep(1),
    written(list) {
      for (const r of list) {
        if (!log.includes(r)) problems.push(`${r} heard as written before it was`);
      }
    },
  };
  return { tries, log, onTheirWay, problems };
}

describe("writeAll", () => {
  it("tries a part that failed at once again without waiting for the slow part", async () => {
    // Record "a0" to leader 1, slow (1 s: a loaded machine's stalls stay far below it); "b1" to
    // leader 0, which refuses at once, then writes it on the next try.
    const c = cluster(
      [{ kind: "ok", ms: 1000 }, { kind: "refused", ms: 0 }, {
        kind: "ok",
        ms: 0,
      }],
      2,
      5,
    );
    const heardAt = new Map<string, number>();
    const told = c.tries.written;
    const t0 = Date.now();
    c.tries.written = (list) => {
      told(list);
      for (const r of list) heardAt.set(r, Date.now() - t0);
    };
    await writeAll(["a0", "b1"], c.tries);
    const done = Date.now() - t0;
    assert.deepEqual(c.problems, []);
    assert.deepEqual([...c.log].sort(), ["a0", "b1"]);
    assert.ok(heardAt.get("b1")! < 500, `b1 heard after ${heardAt.get("b1")} ms`);
    assert.ok(done >= 990, `the write ended after ${done} ms, before its slow part`);
  });

  it("writes each record once, or fails having nothing on its way (generated clusters)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            kind: fc.constantFrom<Outcome["kind"]>("ok", "ok", "refused", "refused", "fatal"),
            ms: fc.integer({ min: 0, max: 4 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
        async (outcomes, n, leaders, asks) => {
          const records = Array.from({ length: n }, (_, i) => `r${String.fromCharCode(65 + i)}`);
          const c = cluster(outcomes, leaders, 6, asks);
          let failed: unknown;
          await writeAll(records, c.tries).catch((e) => failed = e);
          assert.deepEqual(c.problems, []);
          assert.equal(c.onTheirWay.size, 0, "a record still on its way when the write ended");
          assert.equal(new Set(c.log).size, c.log.length, `written twice: ${c.log}`);
          if (failed === undefined) {
            assert.deepEqual([...c.log].sort(), [...records].sort(), "every record written");
          } else {
            assert.ok(failed instanceof Error);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
