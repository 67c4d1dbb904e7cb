// The multi-host test bed itself (tests/_bed.ts): hosts reach each other and the test process,
// and each fault cuts exactly what it says, both ways or one way, until healed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";
import { Bed, bedUnavailable } from "./_bed.ts";
import type { BedHost } from "./_bed.ts";

const skip = bedUnavailable();
let bed: Bed;
const servers: ChildProcess[] = [];

/** A TCP listener on `host`:7000 that answers each connection with its host's name. */
function listen(host: BedHost): Promise<void> {
  const code = `const l = Deno.listen({ hostname: "${host.addr}", port: 7000 }); console.log("up");
    for await (const c of l) { await c.write(new TextEncoder().encode("${host.name}")); c.close(); }`;
  const p = spawn(...bed.on(host, process.execPath, ["eval", code]), {
    stdio: ["ignore", "pipe", "ignore"],
  });
  servers.push(p);
  return new Promise((resolve) => p.stdout!.once("data", () => resolve()));
}

// Connects, reads what comes, prints it and the ms that took (timed in the process, so that
// its start, slow while other tests run, does not count); gives up after 1.5 s in all.
const CONNECT = (addr: string, port: number) =>
  `setTimeout(() => Deno.exit(1), 1500); const t0 = performance.now();
   const c = await Deno.connect({ hostname: "${addr}", port: ${port} });
   const b = new Uint8Array(64); const n = await c.read(b);
   console.log(new TextDecoder().decode(b.subarray(0, n ?? 0)), performance.now() - t0);
   Deno.exit(0);`;

/** What `from` reads from `addr`:`port` within 1.5 s ("" when nothing came), and in how long. */
function readTimed(from: BedHost, addr: string, port: number): Promise<[string, number]> {
  const [cmd, args] = bed.on(from, process.execPath, ["eval", CONNECT(addr, port)]);
  return new Promise((resolve) =>
    execFile(cmd, args, { encoding: "utf8" }, (e, out) => {
      const [text, ms] = out.trim().split(" ");
      resolve(e ? ["", NaN] : [text, Number(ms)]);
    })
  );
}

/** What `from` reads from `addr`:`port` within 1.5 s ("" when nothing came). */
const read = (from: BedHost, addr: string, port: number) =>
  readTimed(from, addr, port).then(([text]) => text);

const reach = (from: BedHost, to: BedHost) => read(from, to.addr, 7000);

describe("the multi-host test bed", { skip }, () => {
  before(async () => {
    bed = Bed.create(["h1", "h2", "h3"]);
    for (const h of bed.hosts) await listen(h);
  });

  after(() => {
    for (const p of servers) p.kill("SIGKILL");
    bed?.destroy();
  });

  it("joins every host to every other and to the test process", async () => {
    const [h1, h2, h3] = bed.hosts;
    assert.equal(await reach(h1, h2), "h2");
    assert.equal(await reach(h2, h3), "h3");
    assert.equal(await reach(h3, h1), "h1");
    const server = createServer((c) => c.end("test")).listen(7001, bed.gateway);
    await new Promise((r) => server.once("listening", r));
    try {
      assert.equal(await read(h1, bed.gateway, 7001), "test");
    } finally {
      server.close();
    }
  });

  it("a host cut off reaches nobody and nobody reaches it, until healed", async () => {
    const [h1, h2, h3] = bed.hosts;
    const heal = bed.cut(h1);
    try {
      assert.equal(await reach(h1, h2), "");
      assert.equal(await reach(h2, h1), "");
      assert.equal(await reach(h2, h3), "h3", "the others still reach each other");
    } finally {
      heal();
    }
    assert.equal(await reach(h2, h1), "h1");
  });

  it("a partition cuts one side from the other, both ways or one way", async () => {
    const [h1, h2, h3] = bed.hosts;
    let heal = bed.partition([h1], [h2, h3]);
    try {
      assert.deepEqual([
        await reach(h1, h2),
        await reach(h1, h3),
        await reach(h2, h1),
        await reach(h2, h3),
      ], [
        "",
        "",
        "",
        "h3",
      ]);
    } finally {
      heal();
    }
    assert.equal(await reach(h1, h2), "h2");
    // One way: what h1 sends to h2 is dropped (a TCP connection needs both ways, so none
    // forms either way); h1 still reaches h3.
    heal = bed.partition([h1], [h2], { oneWay: true });
    try {
      assert.equal(await reach(h1, h2), "");
      assert.equal(await reach(h1, h3), "h3");
    } finally {
      heal();
    }
  });

  it("a slow link delays and drops between one host and the named services only", async () => {
    const [h1, h2, h3] = bed.hosts;
    // The quickest of three: one exchange alone can be slow on a busy machine (a CI run's
    // first sample took long enough to hide the 200 ms). The delay is the relay's timer, 200 ms
    // on the reply (half of the 400) whatever the load: a timer never fires early.
    const timed = async (to: BedHost) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const [text, ms] = await readTimed(h1, to.addr, 7000);
        assert.equal(text, to.name);
        times.push(ms);
      }
      return Math.min(...times);
    };
    const fast = await timed(h3);
    assert.ok(fast < 180, `${fast} ms without a delay`);
    const heal = await bed.slow(h1, [{ addr: h2.addr, port: 7000 }], 400, 0);
    try {
      const slow = await timed(h2);
      assert.ok(slow >= 190, `delayed to h2 (the reply, 200 ms): ${slow} ms`);
      const other = await timed(h3);
      assert.ok(other < 180, `not delayed to h3: ${other} ms`);
    } finally {
      heal();
    }
    const healed = await timed(h2);
    assert.ok(healed < 180, `healed: ${healed} ms`);
    // All lost: nothing gets through, and the heal brings it back.
    const cut = await bed.slow(h1, [{ addr: h2.addr, port: 7000 }], 0, 100);
    try {
      assert.equal(await reach(h1, h2), "");
    } finally {
      cut();
    }
    assert.equal(await reach(h1, h2), "h2");
  });
});
