/**
 * One route on N instances for long (issue 36): this process calls `<name>.whoami` at 64 in
 * flight, served by N `tests/fixtures/mesh_app.ts` processes and nothing else, in chunks of
 * requests; per chunk the rate, the CPU per request of the instances together and of this
 * process. The instances warm up for the first few hundred thousand requests (V8 optimizes a
 * process's code as it runs it, and each of N instances runs 1/N of them); the summary is the
 * median of the chunks after the first half. `sharing_bench.ts` compares 1, 2 and 4 instances in
 * rotating rounds of one run; this one shows each on its own, warm, one run after the other.
 *
 * `deno run -A bench/sharing_long.ts [instances, default 1] [chunks, default 40] [requests a
 * chunk, default 50000]` with a broker on KAFKA_BROKERS (default 127.0.0.1:9092).
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

const [INSTANCES = 1, CHUNKS = 40, PER_CHUNK = 50_000] = process.argv.slice(2).map(Number);
const IN_FLIGHT = 64;

const fixture = fileURLToPath(new URL("../tests/fixtures/mesh_app.ts", import.meta.url));
const t = topicsFor("sharing-long");
const monitor = await startMonitor(t.args, [`-Dbootstrap.servers=${BROKERS}`]);
const common = meshArgs(monitor.port, t.args, [`-Dbootstrap.servers=${BROKERS}`]);
const platform = new Platform({
  dir: "/nonexistent",
  env: {},
  args: ["-Dapplication.name=sharing-long-caller", ...common, "-Dlog.level=warning"],
});
const connector = connectToCloud(platform)!;
const instances: ChildProcess[] = [];
try {
  await connector.joined;
  for (let k = 0; k < INSTANCES; k++) {
    const args = [fixture, "-Dapplication.name=served", ...common, "-Dlog.level=warning"];
    instances.push((await child(args, /^JOINED/m)).proc);
  }
  while (connector.origins("served.whoami").length < INSTANCES) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const po = new PostOffice({}, platform);
  const sides = () => cpuOfSides(...instances.map((p) => p.pid!));
  console.log(
    `Deno ${process.versions.deno}, broker ${BROKERS}, ${INSTANCES} instance(s), ${CHUNKS} ` +
      `chunks of ${PER_CHUNK} at ${IN_FLIGHT} in flight, ${navigator.hardwareConcurrency} cores\n`,
  );
  console.log("| requests so far | rate (/s) | CPU µs per request: instances, caller |");
  console.log("| ---: | ---: | --- |");
  const rows: [number, number, number][] = [];
  for (let c = 0; c < CHUNKS; c++) {
    const [c0, s0] = sides(), t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      for (let i = 0; i < PER_CHUNK / IN_FLIGHT; i++) {
        const reply = await po.request({ to: "served.whoami" }, 10_000);
        if (reply.status !== 200) throw new Error(`served.whoami: ${reply.status}`);
      }
    }));
    const rate = PER_CHUNK / ((performance.now() - t0) / 1000);
    const [c1, s1] = sides();
    const row: [number, number, number] = [
      rate,
      (s1 - s0) * 1000 / PER_CHUNK,
      (c1 - c0) * 1000 / PER_CHUNK,
    ];
    rows.push(row);
    console.log(
      `| ${(c + 1) * PER_CHUNK} | ${Math.round(rate)} | ${row[1].toFixed(1)}, ${
        row[2].toFixed(1)
      } |`,
    );
  }
  const warm = rows.slice(Math.floor(rows.length / 2));
  console.log(
    `\n${INSTANCES} instance(s), median of the last ${warm.length} chunks: ` +
      `${Math.round(median(warm.map((r) => r[0])))}/s, instances ${
        median(warm.map((r) => r[1])).toFixed(1)
      } µs and caller ${median(warm.map((r) => r[2])).toFixed(1)} µs per request`,
  );
} finally {
  for (const p of instances) p.kill("SIGTERM");
  await connector.stop();
  await monitor.stop();
}
process.exit(0);
