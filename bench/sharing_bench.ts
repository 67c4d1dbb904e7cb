/**
 * One route on 1, 2 and 4 instances (issue 36): this process calls `<name>.whoami` at 64 in
 * flight, where `<name>` is served by one `tests/fixtures/mesh_app.ts` process (`one`), two
 * (`two`) or four (`four`); all seven processes run throughout, on the same cores as the caller
 * and the broker. Rounds rotate which route goes first; each round's rate of 2 and 4 instances
 * is compared with the rate of 1 in the same round (the figures are medians of those ratios,
 * the machine's throughput drifting within a run). Each instance serves as many requests before
 * the rounds. Beside the rates: CPU per request of the caller, of the route's instances together
 * and of the broker, and how many requests the caller's produce requests and fetched batches held.
 *
 * `deno run -A bench/sharing_bench.ts [rounds, default 12] [requests a round, default 6000]` with
 * a broker on KAFKA_BROKERS (default 127.0.0.1:9092), e.g. after `deno task kafka start`.
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
import { cpuOfSides } from "./_cpu.ts";

const counts = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const ROUNDS = counts[0] ?? 12;
const PER_ROUND = counts[1] ?? 6000;
const IN_FLIGHT = 64;
const WARM_PER_INSTANCE = 20_000;
const TIERS = [["one", 1], ["two", 2], ["four", 4]] as const;

const fixture = fileURLToPath(new URL("../tests/fixtures/mesh_app.ts", import.meta.url));
const responder = async (args: string[]) => (await child([fixture, ...args], /^JOINED/m)).proc;

const t = topicsFor("sharing");
const monitor = await startMonitor(t.args, [`-Dbootstrap.servers=${BROKERS}`]);
const common = [...meshArgs(monitor.port, t.args, [`-Dbootstrap.servers=${BROKERS}`])];
const procs: ChildProcess[] = [];
const platform = new Platform({
  dir: "/nonexistent",
  env: {},
  args: ["-Dapplication.name=sharing-caller", ...common, "-Dlog.level=warning"],
});
const connector = connectToCloud(platform)!;
try {
  await connector.joined;
  const tierProcs: Record<string, ChildProcess[]> = {};
  for (const [name, n] of TIERS) {
    tierProcs[name] = [];
    for (let i = 0; i < n; i++) {
      const p = await responder([`-Dapplication.name=${name}`, ...common, "-Dlog.level=warning"]);
      procs.push(p);
      tierProcs[name].push(p);
    }
  }
  for (const [name, n] of TIERS) {
    while (connector.origins(`${name}.whoami`).length < n) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const po = new PostOffice({}, platform);
  // `total` requests to `route`, `IN_FLIGHT` at a time, each reply's body (the instance's
  // origin) to `served`; requests per second.
  const run = async (route: string, total: number, served?: (origin: string) => void) => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = 0; i < total / IN_FLIGHT; i++) {
        const reply = await po.request({ to: route }, 10_000);
        if (reply.status !== 200) throw new Error(`${route}: ${reply.status}`);
        served?.(String(reply.body));
      }
    }));
    return total / ((performance.now() - t0) / 1000);
  };
  // Which instances served one round of each route: the load is shared, not sent to one.
  const shares: Record<string, Map<string, number>> = {};
  for (const [name] of TIERS) {
    const by = shares[name] = new Map<string, number>();
    await run(`${name}.whoami`, 3000, (o) => by.set(o, (by.get(o) ?? 0) + 1));
  }
  // Warm-up: every instance serves WARM_PER_INSTANCE requests first, so that the instances of
  // each route are as warm as the one of `one` (V8 optimizes a process's code as it runs it).
  // With the same warm-up per route, each of four instances had run a quarter as much: together
  // they cost 22.8 µs of CPU a request over the rounds, 15.8 after this warm-up.
  for (const [name, n] of TIERS) await run(`${name}.whoami`, WARM_PER_INSTANCE * n);
  const rates: Record<string, number[]> = { one: [], two: [], four: [] };
  // CPU (ms) of the caller, of the route's instances together and of the broker, over the rounds.
  const cpu: Record<string, number[]> = { one: [0, 0, 0], two: [0, 0, 0], four: [0, 0, 0] };
  // The caller's produce requests and fetched batches, over the rounds: how whole its batches are.
  const traffic: Record<string, number[]> = { one: [0, 0], two: [0, 0], four: [0, 0] };
  const calls = () => [connector.traffic.produceRequests, connector.traffic.batchesRead];
  const sides = (name: string) => cpuOfSides(...tierProcs[name].map((p) => p.pid!));
  for (let r = 0; r < ROUNDS; r++) {
    const order = TIERS.map((_, i) => TIERS[(i + r) % TIERS.length]);
    for (const [name] of order) {
      const before = sides(name), counted = calls();
      rates[name].push(await run(`${name}.whoami`, PER_ROUND));
      sides(name).forEach((ms, i) => cpu[name][i] += ms - before[i]);
      calls().forEach((c, i) => traffic[name][i] += c - counted[i]);
    }
  }
  const ratio = (name: string) => median(rates[name].map((x, i) => x / rates.one[i]));
  console.log(
    `Deno ${process.versions.deno}, broker ${BROKERS}, ${ROUNDS} rotating rounds of ` +
      `${PER_ROUND} requests at ${IN_FLIGHT} in flight, ${navigator.hardwareConcurrency} cores\n`,
  );
  console.log(
    "| instances | rate, median of rounds (/s) | / 1 instance (median of rounds) | share of each instance (3,000 requests) | CPU µs per request: caller, instances, broker | caller's requests per produce, per fetched batch |",
  );
  console.log("| ---: | ---: | ---: | --- | --- | --- |");
  for (const [name, n] of TIERS) {
    const share = [...shares[name].values()].sort((a, b) => b - a).join(" / ");
    console.log(
      `| ${n} | ${Math.round(median(rates[name]))} | ${ratio(name).toFixed(2)} | ${share} | ${
        cpu[name].map((ms) => (ms * 1000 / (ROUNDS * PER_ROUND)).toFixed(1)).join(", ")
      } | ${traffic[name].map((c) => (ROUNDS * PER_ROUND / c).toFixed(1)).join(", ")} |`,
    );
  }
} finally {
  for (const p of procs) p.kill("SIGTERM");
  await connector.stop();
  await monitor.stop();
}
process.exit(0);
