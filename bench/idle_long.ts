/**
 * One idle mesh application (the default client) and its monitor, measured over one long window:
 * CPU (ms a second) and wake-ups (voluntary context switches of the main thread, a second) from
 * `settle` seconds after the join, for `window` seconds. `bench/idle_bench.ts` reads 30-s windows
 * (exact to 0.33 ms/s, /proc counts 10-ms ticks); a 90-s window is exact to 0.11 ms/s, to tell
 * two versions apart (run each in its own checkout, alternating).
 *
 * `deno run -A bench/idle_long.ts [window_s=90] [settle_s=45]` with a broker on KAFKA_BROKERS
 * (default 127.0.0.1:9092).
 *
 * @module
 */
import process from "node:process";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { child } from "./_child.ts";
import { cpuMs, wakes } from "./_cpu.ts";

const WINDOW_S = Number(process.argv[2] ?? 90);
const SETTLE_S = Number(process.argv[3] ?? 45);
const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

const t = topicsFor("idle");
const monitor = await startMonitor(t.args, [`-Dbootstrap.servers=${BROKERS}`]);
const { proc: app } = await child([
  "tests/fixtures/mesh_app.ts",
  "-Dapplication.name=idle",
  ...meshArgs(monitor.port, t.args, [`-Dbootstrap.servers=${BROKERS}`]),
  "-Dlog.level=warning",
], /JOINED/);
await sleep(SETTLE_S);
const pids = [app.pid!, monitor.proc.pid!];
const before = pids.map((p) => [cpuMs(p), wakes(p)]);
await sleep(WINDOW_S);
const [a, m] = pids.map((p, i) => [
  (cpuMs(p) - before[i][0]) / WINDOW_S,
  (wakes(p) - before[i][1]) / WINDOW_S,
]);
console.log(
  `idle application ${a[0].toFixed(2)} ms/s, ${a[1].toFixed(2)} wakes/s; ` +
    `its monitor ${m[0].toFixed(2)} ms/s, ${
      m[1].toFixed(2)
    } wakes/s (${WINDOW_S} s from ${SETTLE_S} s)`,
);
app.kill("SIGTERM");
await monitor.stop();
process.exit(0);
