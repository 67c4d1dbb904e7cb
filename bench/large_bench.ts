/**
 * Large payloads over the mesh (issue 36): this process sends `demo.echo` requests carrying 1 MB
 * at 1 and at 64 in flight, and 5 MB one at a time, to one `tests/fixtures/mesh_app.ts` process;
 * each reply carries the same bytes back (so each request is a block set each way). Rounds rotate
 * the order of the three cases; the figures are medians of the rounds.
 *
 * `deno run -A bench/large_bench.ts [rounds, default 5]` with a broker on KAFKA_BROKERS (default
 * 127.0.0.1:9092), e.g. after `deno task kafka start`.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Platform, PostOffice } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { child, median } from "./_child.ts";

const ROUNDS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 5);
const MB = 1024 * 1024;
// name, bytes, in flight, requests a round
const CASES = [
  ["1 MB, 1 in flight", MB, 1, 40],
  ["1 MB, 64 in flight", MB, 64, 256],
  ["5 MB, 1 in flight", 5 * MB, 1, 10],
] as const;

const fixture = fileURLToPath(new URL("../tests/fixtures/mesh_app.ts", import.meta.url));
const t = topicsFor("large");
const monitor = await startMonitor(t.args, [`-Dbootstrap.servers=${BROKERS}`]);
const common = [...meshArgs(monitor.port, t.args, [`-Dbootstrap.servers=${BROKERS}`])];
let responder: ChildProcess | undefined;
const platform = new Platform({
  dir: "/nonexistent",
  env: {},
  args: ["-Dapplication.name=large-caller", ...common, "-Dlog.level=warning"],
});
const connector = connectToCloud(platform)!;
try {
  await connector.joined;
  responder = (await child([fixture, "-Dapplication.name=large", ...common], /^JOINED/m)).proc;
  while (connector.origins("demo.echo").length < 1) await new Promise((r) => setTimeout(r, 20));
  const po = new PostOffice({}, platform);
  // `total` echoes of `bytes`, `inFlight` at a time: [requests per second, p50 round trip (ms)].
  const run = async (bytes: number, inFlight: number, total: number) => {
    const body = new Uint8Array(bytes).fill(7);
    const took: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: inFlight }, async () => {
      for (let i = 0; i < total / inFlight; i++) {
        const t1 = performance.now();
        const reply = await po.request({ to: "demo.echo", body }, 60_000);
        if ((reply.body as Uint8Array).length !== bytes) throw new Error("wrong reply");
        took.push(performance.now() - t1);
      }
    }));
    return [total / ((performance.now() - t0) / 1000), median(took)];
  };
  for (const [, bytes, inFlight] of CASES) await run(bytes, inFlight, inFlight * 2); // warm up
  const rates = CASES.map(() => [] as number[]);
  const p50s = CASES.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < CASES.length; k++) {
      const i = (k + r) % CASES.length;
      const [, bytes, inFlight, total] = CASES[i];
      const [rate, p50] = await run(bytes, inFlight, total);
      rates[i].push(rate);
      p50s[i].push(p50);
    }
  }
  console.log(
    `Deno ${process.versions.deno}, broker ${BROKERS}, ${ROUNDS} rotating rounds, ` +
      `${navigator.hardwareConcurrency} cores\n`,
  );
  console.log("| case | requests /s (median of rounds) | p50 round trip (ms) | rounds /s |");
  console.log("| --- | ---: | ---: | --- |");
  CASES.forEach(([name], i) => {
    console.log(
      `| ${name} | ${median(rates[i]).toFixed(1)} | ${median(p50s[i]).toFixed(0)} | ` +
        `${rates[i].map((x) => x.toFixed(1)).join(", ")} |`,
    );
  });
} finally {
  responder?.kill("SIGTERM");
  await connector.stop();
  await monitor.stop();
}
process.exit(0);
