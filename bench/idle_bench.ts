/**
 * CPU of an idle mesh application and of its monitor, per Kafka client, beside the bare
 * @platformatic/kafka client idle (`_bare_idle.ts`: one consumer reading an idle topic, one
 * producer). Each starts afresh; its CPU is read from `/proc` (Linux; 10 ms ticks, so the figures
 * are exact to 0.33 ms/s) over two windows of 30 s: from 3 s after it is ready (what a new
 * process costs: V8 still compiles and collects what the start left) and from 45 s after it
 * (what it costs for as long as it stays idle). In the second window it also counts how often each
 * process's main thread woke (its voluntary context switches), and beside the bare client runs two
 * processes that only wake (`_empty_wakes.ts`: an empty timer, as often as the mesh application
 * woke on the default client, and once a second): what waking costs on this machine by itself.
 *
 * `deno run -A bench/idle_bench.ts [rounds]` (default 2, alternating the clients) with a broker
 * on KAFKA_BROKERS (default 127.0.0.1:9092).
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { CLIENT_LIBRARIES, DEFAULT_CLIENT } from "../kafka/properties.ts";
import { child } from "./_child.ts";
import { cpuMs, wakes } from "./_cpu.ts";

const ROUNDS = Number(process.argv[2] ?? 2);
const WINDOW_S = 30;
const FIRST_S = 3;
const SETTLED_S = 45;

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** What one window measured of a process. */
interface Use {
  /** CPU, ms a second. */
  cpu: number;
  /** Times its main thread woke, a second. */
  wakes: number;
}

// Each process's use over WINDOW_S seconds.
async function window(pids: number[]): Promise<Use[]> {
  const before = pids.map((p) => [cpuMs(p), wakes(p)]);
  await sleep(WINDOW_S);
  return pids.map((p, i) => ({
    cpu: (cpuMs(p) - before[i][0]) / WINDOW_S,
    wakes: (wakes(p) - before[i][1]) / WINDOW_S,
  }));
}

// The two windows of `pids`, the first FIRST_S seconds after ready, the second SETTLED_S after.
async function windows(pids: number[]): Promise<[Use[], Use[]]> {
  await sleep(FIRST_S);
  const first = await window(pids);
  await sleep(SETTLED_S - FIRST_S - WINDOW_S);
  return [first, await window(pids)];
}

function stop(p: ChildProcess): Promise<unknown> {
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  return exited;
}

// A table row: the first window's CPU, the second's, its wakes and CPU per wake.
function row(name: string, [first, settled]: [Use, Use], monitor = "-"): string {
  const perWake = settled.wakes > 0 ? (settled.cpu / settled.wakes).toFixed(2) : "-";
  return `| ${name} | ${first.cpu.toFixed(2)} | ${settled.cpu.toFixed(2)} | ` +
    `${settled.wakes.toFixed(1)} | ${perWake} | ${monitor} |`;
}

console.log(
  "| process | first 30 s (ms/s) | from 45 s (ms/s) | wakes/s from 45 s | ms per wake | " +
    "its monitor: first, from 45 s (ms/s) |\n" +
    "| --- | ---: | ---: | ---: | ---: | --- |",
);
for (let r = 0; r < ROUNDS; r++) {
  let appWakes = 0;
  for (const client of CLIENT_LIBRARIES) {
    const t = topicsFor("idle");
    const kafka = [`-Dbootstrap.servers=${BROKERS}`, `-Dkafka.client=${client}`];
    const monitor = await startMonitor(t.args, kafka);
    const { proc: app } = await child([
      "tests/fixtures/mesh_app.ts",
      "-Dapplication.name=idle",
      ...meshArgs(monitor.port, t.args, kafka),
      "-Dlog.level=warning",
    ], /JOINED/);
    const [first, settled] = await windows([app.pid!, monitor.proc.pid!]);
    const m = `${first[1].cpu.toFixed(2)}, ${settled[1].cpu.toFixed(2)}`;
    console.log(row(`mesh application, ${client}`, [first[0], settled[0]], m));
    if (client === DEFAULT_CLIENT) appWakes = settled[0].wakes;
    await stop(app);
    await monitor.stop();
  }
  // The bare client and the two that only wake, side by side (each idles: they hardly meet).
  const hz = Math.max(1, Math.round(appWakes));
  const procs = [
    (await child(["bench/_bare_idle.ts"], /READY/)).proc,
    (await child(["bench/_empty_wakes.ts", String(hz)], /READY/)).proc,
    (await child(["bench/_empty_wakes.ts", "1"], /READY/)).proc,
  ];
  const [first, settled] = await windows(procs.map((p) => p.pid!));
  console.log(row("bare platformatic client", [first[0], settled[0]]));
  console.log(row(`an empty timer, ${hz}/s (as the application woke)`, [first[1], settled[1]]));
  console.log(row("an empty timer, 1/s", [first[2], settled[2]]));
  await Promise.all(procs.map(stop));
}
process.exit(0);
