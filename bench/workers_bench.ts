/**
 * CPU-bound work: four computations of 300 ms each (a fixed amount of arithmetic, calibrated on
 * the event loop first) sent at once to a route with 4 instances, as worker
 * threads ({@link registerWorker}) against the same function on the event loop (the baseline),
 * in one run. Reports the wall time of the four and the event loop's longest stall meanwhile
 * (a 5 ms timer's largest lateness), median of 5 rounds. Prints a Markdown table.
 *
 * `deno run -A bench/workers_bench.ts`
 *
 * @module
 */
import { Platform, PostOffice } from "../mod.ts";
import { registerWorker } from "../runtime/workers.ts";
import cpuWork from "../tests/fixtures/cpu_work.ts";

const ROUNDS = 5;
const MODULE = new URL("../tests/fixtures/cpu_work.ts", import.meta.url);

let iterations = 1_000_000;

async function round(po: PostOffice, route: string): Promise<{ wall: number; stall: number }> {
  let stall = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last - 5);
    last = now;
  }, 5);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, () => po.request({ to: route, body: { iterations } }, 30_000)),
  );
  const wall = performance.now() - started;
  clearInterval(timer);
  stall = Math.max(stall, performance.now() - last - 5);
  return { wall, stall };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
platform.register("cpu.loop", cpuWork, 4);
const w = registerWorker(platform, "cpu.threads", MODULE, { instances: 4 });
const po = new PostOffice({}, platform);
// Calibrate: iterations that take 300 ms in one call on this machine.
for (let took = 0; took < 100;) {
  const t = performance.now();
  await po.request({ to: "cpu.loop", body: { iterations } }, 30_000);
  took = performance.now() - t;
  if (took < 100) iterations *= 4;
  else iterations = Math.round(iterations * 300 / took);
}
await round(po, "cpu.threads"); // threads start
const results: Record<string, { wall: number[]; stall: number[] }> = {
  "cpu.loop": { wall: [], stall: [] },
  "cpu.threads": { wall: [], stall: [] },
};
for (let i = 0; i < ROUNDS; i++) {
  for (const route of ["cpu.loop", "cpu.threads"]) {
    const r = await round(po, route);
    results[route].wall.push(r.wall);
    results[route].stall.push(r.stall);
  }
}
await w.close();
console.log(
  `| 4 x 300 ms, 4 instances (${navigator.hardwareConcurrency} cores) | wall (ms) | longest event-loop stall (ms) |`,
);
console.log("|---|---|---|");
for (
  const [route, label] of [["cpu.loop", "on the event loop"], ["cpu.threads", "worker threads"]]
) {
  const r = results[route];
  console.log(`| ${label} | ${median(r.wall).toFixed(0)} | ${median(r.stall).toFixed(0)} |`);
}
const ratio = median(results["cpu.loop"].wall) / median(results["cpu.threads"].wall);
console.log(`\nWorker threads finish ${ratio.toFixed(2)}x sooner than the event loop.`);
