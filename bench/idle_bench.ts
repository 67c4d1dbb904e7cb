/**
 * CPU of an idle mesh application and of its monitor, per Kafka client, beside the bare
 * @platformatic/kafka client idle (`_bare_idle.ts`: one consumer reading an idle topic, one
 * producer). Each starts afresh; its CPU is read from `/proc` (Linux; 10 ms ticks, so the figures
 * are exact to 0.33 ms/s) over two windows of 30 s: from 3 s after it is ready (what a new
 * process costs: V8 still compiles and collects what the start left) and from 45 s after it
 * (what it costs for as long as it stays idle).
 *
 * `deno run -A bench/idle_bench.ts [rounds]` (default 2, alternating the clients) with a broker
 * on KAFKA_BROKERS (default 127.0.0.1:9092).
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { CLIENT_LIBRARIES } from "../kafka/properties.ts";
import { child } from "./_child.ts";
import { cpuMs } from "./_cpu.ts";

const ROUNDS = Number(process.argv[2] ?? 2);
const WINDOW_S = 30;
const FIRST_S = 3;
const SETTLED_S = 45;

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

// ms of CPU a second of each process over WINDOW_S seconds.
async function window(pids: number[]): Promise<string[]> {
  const before = pids.map(cpuMs);
  await sleep(WINDOW_S);
  return pids.map((p, i) => ((cpuMs(p) - before[i]) / WINDOW_S).toFixed(2));
}

// The two windows of `pids`, the first FIRST_S seconds after ready, the second SETTLED_S after.
async function windows(pids: number[]): Promise<[string[], string[]]> {
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

console.log(
  "| process | first 30 s (ms/s) | from 45 s (ms/s) | its monitor: first, from 45 s (ms/s) |\n" +
    "| --- | ---: | ---: | --- |",
);
for (let r = 0; r < ROUNDS; r++) {
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
    console.log(
      `| mesh application, ${client} | ${first[0]} | ${settled[0]} | ${first[1]}, ${settled[1]} |`,
    );
    await stop(app);
    await monitor.stop();
  }
  const { proc: bare } = await child(["bench/_bare_idle.ts"], /READY/);
  const [first, settled] = await windows([bare.pid!]);
  console.log(`| bare platformatic client | ${first[0]} | ${settled[0]} | - |`);
  await stop(bare);
}
process.exit(0);
