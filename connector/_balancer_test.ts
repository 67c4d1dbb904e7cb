import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Balancer, FAST_MS } from "./_balancer.ts";

const nextTurn = () => new Promise((r) => setTimeout(r, 0));

// n instances whose replies usually take `roundTrip` ms (0: not known yet), and the requests
// waiting on each, as the inbox counts them.
function mesh(n: number, roundTrip = 0) {
  const origins = Array.from({ length: n }, (_, i) => `o${i}`);
  const waiting = new Map<string, number>();
  const balancer = new Balancer({
    waiting: (o) => waiting.get(o) ?? 0,
    usualTime: () => roundTrip,
  });
  const request = () => {
    const o = balancer.pick("a.b", origins, "me", true)!;
    waiting.set(o, (waiting.get(o) ?? 0) + 1);
    return o;
  };
  const tally = (picked: string[]) => origins.map((o) => picked.filter((p) => p === o).length);
  return { origins, waiting, balancer, request, tally };
}

const SLOW = fc.constantFrom(0, FAST_MS + 1, 500); // not known yet, or not fast

describe("Balancer", () => {
  it("sends to the one instance there is, and never to this one", () => {
    const b = new Balancer({ waiting: () => 0, usualTime: () => 1 });
    assert.equal(b.pick("a.b", ["o1"], "me", true), "o1");
    assert.equal(b.pick("a.b", ["me"], "me", true), undefined);
    assert.equal(b.pick("a.b", [], "me", true), undefined);
    for (let i = 0; i < 10; i++) assert.equal(b.pick("a.b", ["me", "o1"], "me", i % 2 === 0), "o1");
  });

  for (const roundTrip of [0, 1, 100]) {
    it(`takes turns for one request at a time (round trip ${roundTrip} ms)`, async () => {
      const m = mesh(3, roundTrip);
      const picked: string[] = [];
      for (let i = 0; i < 30; i++) {
        const o = m.request();
        picked.push(o);
        m.waiting.set(o, 0); // replied before the next
        await nextTurn();
      }
      assert.deepEqual(m.tally(picked), [10, 10, 10]);
    });
  }

  it("spreads a fan-out to slow instances evenly over all of them (generated)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 200 }),
        SLOW,
        (n, k, rt) => {
          const m = mesh(n, rt);
          const counts = m.tally(Array.from({ length: k }, () => m.request()));
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${k} over ${n}: ${counts}`);
        },
      ),
    );
  });

  it("sends the batch that replies from a slow instance set off to that instance (generated)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 64 }),
        SLOW,
        (n, k, rt) => {
          const m = mesh(n, rt);
          // Every instance has k waiting; the replies of o1's k arrive, and each sets off a request.
          for (const o of m.origins) m.waiting.set(o, k);
          m.waiting.set("o1", 0);
          assert.equal(m.tally(Array.from({ length: k }, () => m.request()))[1], k);
        },
      ),
    );
  });

  it("keeps each turn's requests to fast instances on one, the next turn on the next", async () => {
    const m = mesh(4, FAST_MS / 2);
    const turns: string[][] = [];
    for (let t = 0; t < 8; t++) {
      turns.push(Array.from({ length: 5 + t }, () => m.request()));
      await nextTurn();
    }
    for (const turn of turns) assert.equal(new Set(turn).size, 1, `one instance a turn: ${turn}`);
    assert.deepEqual(turns.map((t) => t[0]), [...m.origins, ...m.origins], "in turn");
  });

  it("spreads events that are not requests within a turn, and each turn starts afresh", async () => {
    const m = mesh(4);
    const picked = Array.from(
      { length: 40 },
      () => m.balancer.pick("a.b", m.origins, "me", false)!,
    );
    assert.deepEqual(m.tally(picked), [10, 10, 10, 10]);
    await nextTurn();
    const next = Array.from({ length: 4 }, () => m.balancer.pick("a.b", m.origins, "me", false)!);
    assert.equal(new Set(next).size, 4, "the counts of the last turn are gone");
  });
});
