import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { setImmediate } from "node:timers";
import {
  REQUEST_BYTES,
  REQUESTS_IN_FLIGHT,
  SendQueue,
  WAITING_BYTES,
  WAITING_BYTES_PER_PARTITION,
  WAITING_RECORDS_PER_PARTITION,
} from "./_send_queue.ts";
import type { OutRecord } from "./client.ts";

const record = (value: string | Uint8Array): OutRecord => ({ topic: "t", partition: 0, value });

// `p`, or resolved after a second (a send queued rather than refused): assert.rejects then fails.
const soon = (p: Promise<void>) =>
  Promise.race([p, new Promise<void>((r) => setTimeout(r, 1000).unref?.())]);

describe("SendQueue", () => {
  it("writes what one turn queued as one request, in order", async () => {
    const writes: string[][] = [];
    const q = new SendQueue(
      (records) => {
        writes.push(records.map((r) => String(r.value)));
        return Promise.resolve();
      },
      () => Promise.resolve(),
    );
    await Promise.all([q.send([record("a")]), q.send([record("b"), record("c")])]);
    await q.send([record("d")]);
    assert.deepEqual(writes, [["a", "b", "c"], ["d"]]);
  });

  it("splits a turn into requests of at most REQUEST_BYTES", async () => {
    const sizes: number[] = [];
    const q = new SendQueue(
      (records) => {
        sizes.push(records.reduce((n, r) => n + (r.value as Uint8Array).byteLength, 0));
        return Promise.resolve();
      },
      () => Promise.resolve(),
    );
    const big = new Uint8Array(REQUEST_BYTES / 2 + 1);
    await Promise.all([q.send([record(big)]), q.send([record(big)]), q.send([record(big)])]);
    assert.deepEqual(sizes, [big.byteLength, big.byteLength, big.byteLength]);
  });

  it("fails the callers of a failed request, and all of a turn that could not start", async () => {
    let fail = true;
    const q = new SendQueue(
      () => fail ? Promise.reject(new Error("broker says no")) : Promise.resolve(),
      () => Promise.resolve(),
    );
    await assert.rejects(q.send([record("x")]), /broker says no/);
    fail = false;
    await q.send([record("y")]);
    const down = new SendQueue(() => Promise.resolve(), () => Promise.reject(new Error("down")));
    const both = [down.send([record("a")]), down.send([record("b")])];
    for (const p of both) await assert.rejects(p, /down/);
  });

  it("keeps a turn's requests in flight together, within the bound, and each caller waits for all of its own (generated)", async () => {
    // Callers of 0-6 records of 0-300 KiB in one turn; each request answers after 0-3 ms, or fails.
    const callers = fc.array(
      fc.array(fc.integer({ min: 0, max: 300 * 1024 }), { maxLength: 6 }),
      { minLength: 1, maxLength: 12 },
    );
    await fc.assert(
      fc.asyncProperty(callers, fc.array(fc.boolean(), { maxLength: 40 }), async (sizes, fails) => {
        let inFlight = 0;
        let most = 0;
        const requests: { values: string[]; ok: boolean }[] = [];
        const q = new SendQueue(async (records) => {
          const ok = !(fails[requests.length] ?? false);
          requests.push({ values: records.map((r) => String(r.key)), ok });
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, requests.length % 4));
          inFlight--;
          if (!ok) throw new Error("broker says no");
        }, () => Promise.resolve());
        const outcomes = await Promise.allSettled(sizes.map((s, c) =>
          q.send(s.map((n, i) => ({
            topic: "t",
            partition: 0,
            key: `${c}.${i}`,
            value: new Uint8Array(n),
          })))
        ));
        assert.ok(most <= REQUESTS_IN_FLIGHT, `${most} in flight`);
        const all = sizes.flatMap((s, c) => s.map((_, i) => `${c}.${i}`));
        const written = requests.flatMap((r) => r.values);
        // In order, each once; a failed caller's records not yet written are dropped.
        assert.deepEqual(written, all.filter((v) => written.includes(v)), "in order, each once");
        sizes.forEach((s, c) => {
          const mine = requests.filter((r) => r.values.some((v) => v.startsWith(`${c}.`)));
          const whole = s.every((_, i) => written.includes(`${c}.${i}`));
          const expected = whole && mine.every((r) => r.ok) ? "fulfilled" : "rejected";
          assert.equal(outcomes[c].status, expected, `caller ${c}`);
        });
        if (requests.length > REQUESTS_IN_FLIGHT && fails.every((f) => !f)) {
          assert.ok(most > 1, "requests overlap");
        }
      }),
      { numRuns: 60 },
    );
  });
  it("holds a partition's records while REQUESTS_IN_FLIGHT requests hold it, and sends them together; other partitions go", async () => {
    const writes: string[][] = [];
    const answers: (() => void)[] = [];
    const q = new SendQueue((records) => {
      writes.push(records.map((r) => `${r.partition}${r.value}`));
      if (records.every((r) => r.partition === 1)) return Promise.resolve();
      return new Promise<void>((r) => answers.push(r));
    }, () => Promise.resolve());
    const on = (partition: number, value: string) => q.send([{ topic: "t", partition, value }]);
    const sent: Promise<void>[] = [];
    // A partition that takes no writes: one request per turn until the bound, then they wait.
    for (let turn = 0; turn < 10; turn++) {
      sent.push(on(0, `a${turn}`));
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.equal(writes.length, REQUESTS_IN_FLIGHT);
    await on(1, "b"); // another partition is not held up
    assert.deepEqual(writes.at(-1), ["1b"]);
    answers.shift()!();
    await new Promise((r) => setTimeout(r, 0));
    // The six that waited, in one request, in order.
    assert.deepEqual(writes.at(-1), ["0a4", "0a5", "0a6", "0a7", "0a8", "0a9"]);
    for (const a of answers) a();
    await Promise.all(sent);
  });

  it("bounds what waits for a partition whose writes are not answered: more fails at once, other partitions go, and it takes records again once answered", async () => {
    const MiB = 1024 * 1024;
    const block = new Uint8Array(MiB); // one buffer, sent many times: the bytes are counted, not held
    const hanging = new Map<number, PromiseWithResolvers<void>[]>();
    const q = new SendQueue((records) => {
      const p = records[0].partition!;
      if (p >= 3) return Promise.resolve();
      const w = Promise.withResolvers<void>();
      hanging.set(p, [...hanging.get(p) ?? [], w]);
      return w.promise;
    }, () => Promise.resolve());
    const on = (partition: number, n: number) =>
      Array.from({ length: n }, () => q.send([{ topic: "t", partition, value: block }]));
    const turn = () => new Promise((r) => setTimeout(r, 0));
    // Partition 0: four requests in flight, and as many bytes waiting as it may hold.
    const perPartition = WAITING_BYTES_PER_PARTITION / MiB;
    const first = on(0, REQUESTS_IN_FLIGHT + perPartition);
    await turn();
    assert.equal(hanging.get(0)!.length, REQUESTS_IN_FLIGHT);
    const [refused] = on(0, 1);
    await assert.rejects(soon(refused), /Kafka t:0: 128 records \(128.0 MiB\) wait for it/);
    await Promise.all(on(3, 5)); // a partition with nothing waiting goes
    // Answered: what waited goes (one record a request, 1 MiB each), and it takes records again.
    for (let i = 0; i < REQUESTS_IN_FLIGHT + perPartition; i++) {
      hanging.get(0)!.shift()!.resolve();
      await turn();
    }
    await Promise.all(first);
    const again = on(0, 1);
    await turn();
    hanging.get(0)!.shift()!.resolve();
    await Promise.all(again);
    // Across partitions: 0, 1 and 2 each below their own bound, together over WAITING_BYTES.
    const each = Math.ceil(WAITING_BYTES / MiB / 3) + 1;
    assert.ok(each < perPartition);
    const held = [0, 1, 2].flatMap((p) => on(p, REQUESTS_IN_FLIGHT + each));
    await turn();
    await assert.rejects(soon(on(1, 1)[0]), /MiB in all\): not queued/);
    await Promise.all(on(4, 1)); // nothing waits for 4: it goes
    // Answered: everything that waited is written, and nothing refused was.
    let requests = 0;
    for (let i = 0; i < each + 10; i++) {
      for (const p of [0, 1, 2]) {
        for (const w of hanging.get(p)!.splice(0)) {
          requests++;
          w.resolve();
        }
      }
      await turn();
    }
    await Promise.all(held);
    assert.equal(requests, 3 * (REQUESTS_IN_FLIGHT + each));
  });

  it("bounds the records waiting for a partition by count too", async () => {
    let write = 0;
    const q = new SendQueue(
      () => write++ < REQUESTS_IN_FLIGHT ? new Promise(() => {}) : Promise.resolve(),
      () => Promise.resolve(),
    );
    const records = Array.from({
      length: WAITING_RECORDS_PER_PARTITION + REQUEST_BYTES / 1000 * REQUESTS_IN_FLIGHT,
    }, (_, i) => ({ topic: "t", partition: 0, value: String(i).padEnd(333) }));
    void q.send(records).catch(() => {});
    await new Promise((r) => setTimeout(r, 0));
    await assert.rejects(
      soon(q.send([{ topic: "t", partition: 0, value: "x" }])),
      /records .* wait for it/,
    );
  });

  it("frees a partition as soon as the writer says its records are written, while the rest of the request is tried", async () => {
    // Partition 0's leader is away: a request holding its records ends only when told to;
    // partition 1's leader answers at once.
    const writes: string[][] = [];
    const ends: ((ok: boolean) => void)[] = [];
    const q = new SendQueue((records, written) => {
      writes.push(records.map((r) => `${r.partition}${r.value}`));
      written?.(records.filter((r) => r.partition === 1));
      if (records.every((r) => r.partition === 1)) return Promise.resolve();
      return new Promise<void>((ok, no) => ends.push((y) => y ? ok() : no(new Error("away"))));
    }, () => Promise.resolve());
    const on = (partition: number, value: string) => q.send([{ topic: "t", partition, value }]);
    const inTime = (p: Promise<void>, what: string) =>
      Promise.race([
        p,
        new Promise<never>((_, no) => setTimeout(() => no(new Error(`${what} still waits`)), 500)),
      ]);
    const zeros: Promise<void>[] = [];
    for (let turn = 0; turn < 10; turn++) {
      zeros.push(on(0, `a${turn}`));
      zeros.at(-1)!.catch(() => {});
      // In the same request as partition 0's record, and answered without it.
      await inTime(on(1, `b${turn}`), `b${turn}`);
    }
    // Partition 1 went every turn; partition 0 is held at its bound.
    assert.equal(writes.filter((w) => w.some((r) => r.startsWith("1"))).length, 10);
    assert.equal(writes.filter((w) => w.some((r) => r.startsWith("0"))).length, REQUESTS_IN_FLIGHT);
    // A caller with records on both partitions waits for both.
    let both = false;
    const spanning = q.send([
      { topic: "t", partition: 1, value: "c" },
      { topic: "t", partition: 0, value: "d" },
    ]).then(() => void (both = true));
    spanning.catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(both, false);
    // One of partition 0's requests ends: the six that waited (and the spanning caller's) go.
    ends.shift()!(true);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(writes.at(-1), ["0a4", "0a5", "0a6", "0a7", "0a8", "0a9", "0d"]);
    // The three older ones fail: their partition 0 callers hear it (their partition 1 callers
    // heard long ago); the last one is answered.
    for (const end of ends.splice(0, 3)) end(false);
    ends.shift()!(true);
    const outcomes = await Promise.allSettled(zeros);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      [
        "fulfilled",
        "rejected",
        "rejected",
        "rejected",
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "fulfilled",
      ],
    );
    await spanning;
    assert.equal(both, true);
  });

  it("keeps each partition's order and bound over turns, under failures (generated)", async () => {
    // Turns of sends of 1-3 records to partitions 0-2; requests answer after 0-12 ms, or fail.
    const turns = fc.array(
      fc.array(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 3 }), {
        maxLength: 4,
      }),
      { minLength: 1, maxLength: 12 },
    );
    await fc.assert(
      fc.asyncProperty(
        turns,
        fc.array(fc.boolean(), { maxLength: 60 }),
        fc.array(fc.boolean(), {
          maxLength: 60,
        }),
        async (plan, fails, partial) => {
          const inFlight = [0, 0, 0];
          const most = [0, 0, 0];
          const written: string[] = [];
          let n = 0;
          // Some requests say early that one of their partitions is written (its leader answered).
          const early = new Set<string>(); // keys of records written early
          const q = new SendQueue(async (records, done) => {
            const i = n++;
            const ok = !(fails[i] ?? false);
            const parts = [...new Set(records.map((r) => r.partition!))];
            for (const p of parts) most[p] = Math.max(most[p], ++inFlight[p]);
            written.push(...records.map((r) => String(r.key)));
            const first = partial[i] ? parts[0] : undefined;
            if (first !== undefined) {
              await new Promise((r) => setTimeout(r, i % 2));
              inFlight[first]--;
              const mine = records.filter((r) => r.partition === first);
              for (const r of mine) early.add(String(r.key));
              done?.(mine);
            }
            await new Promise((r) => setTimeout(r, (i % 5) * 3));
            for (const p of parts) if (p !== first) inFlight[p]--;
            if (!ok) throw new Error("broker says no");
          }, () => Promise.resolve());
          const sends: { keys: string[]; done: Promise<void> }[] = [];
          let id = 0;
          for (const turn of plan) {
            for (const parts of turn) {
              const records = parts.map((p) => ({ topic: "t", partition: p, key: `${p}.${id++}` }));
              const done = q.send(records.map((r) => ({ ...r, value: "x" })));
              done.catch(() => {});
              sends.push({ keys: records.map((r) => r.key), done });
            }
            await new Promise((r) => setImmediate(r)); // the next turn
          }
          const outcomes = await Promise.allSettled(sends.map((s) => s.done));
          for (const p of [0, 1, 2]) {
            assert.ok(most[p] <= REQUESTS_IN_FLIGHT, `partition ${p}: ${most[p]} in flight`);
            const mine = written.filter((k) => k.startsWith(`${p}.`)).map((k) =>
              Number(k.slice(2))
            );
            assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `partition ${p} in order`);
            assert.equal(new Set(mine).size, mine.length, `partition ${p}: each once`);
          }
          sends.forEach((s, i) => {
            if (outcomes[i].status === "fulfilled") {
              for (const k of s.keys) assert.ok(written.includes(k), `${k} written`);
            }
            // Written early, its request's failure afterwards is not this caller's.
            if (s.keys.every((k) => early.has(k))) assert.equal(outcomes[i].status, "fulfilled");
          });
          assert.equal(q.waiting, 0, "nothing counted as waiting once all is answered");
        },
      ),
      { numRuns: 80 },
    );
  });
});
