/**
 * Requests across the mesh between two processes, against a baseline in the same run: a
 * ping-pong between two processes over the same broker with the same Kafka client and
 * settings (the connector's `KafkaLink`: kafkajs, acks=1, single-partition consumers with
 * 100 ms fetch waits), without envelopes, routing or inboxes. Also: time from an
 * application's start until it is callable, and from its stop (SIGTERM) or kill (SIGKILL)
 * until this instance has dropped it.
 *
 * `deno run -A bench/mesh_bench.ts [sequential] [concurrent] [--token]` (defaults 1500 and 36000)
 * with a broker on KAFKA_BROKERS (default 127.0.0.1:9092). With `--token` the monitor requires a
 * mesh token and both applications present one (and their identity secrets).
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Platform, PostOffice } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import { KafkaLink } from "../internal.ts";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";

const counts = process.argv.slice(2).filter((a) => /^\d+$/.test(a));
const SEQ = Number(counts[0] ?? 1500);
const CONC = Number(counts[1] ?? 36_000);
const TOKEN = process.argv.includes("--token") ? ["-Dmesh.tokens=mesh-bench-token"] : [];
const IN_FLIGHT = 64;
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function child(args: string[], readyLine: RegExp): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ["run", "-A", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      const m = out.split("\n").find((l) => readyLine.test(l));
      if (m) resolve({ proc, line: m });
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`child exited ${code}:\n${out}`)));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function latencies(one: () => Promise<void>, n: number): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await one();
    lat.push(performance.now() - t0);
  }
  return lat;
}

async function throughput(one: () => Promise<void>, n: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    for (let i = 0; i < n / IN_FLIGHT; i++) await one();
  }));
  return n / ((performance.now() - t0) / 1000);
}

// ---- baseline: ping-pong over KafkaLink ----
const pingTopic = `${topicsFor("pingpong").prefix}.pp`;
const link = new KafkaLink({ brokers: BROKERS.split(","), clientId: "pingpong" });
await link.ensureTopic(pingTopic, 2);
const peer = await child([here("./_pingpong_peer.ts"), BROKERS, pingTopic], /PEER READY/);
const waiting = new Map<string, () => void>();
const back = link.consumePartition(pingTopic, 0, (r) => waiting.get(r.key!)?.());
await back.ready;
// Records shaped as the mesh's: a 32-hex key, the `_event_`/`_rx_` headers, and a value the
// size of a small request envelope.
const shaped = process.env.PINGPONG_SHAPE !== "bare";
const value = new Uint8Array(shaped ? 160 : 4);
let n = 0;
const ping = () => {
  const key = String(++n).padStart(32, "0");
  const p = new Promise<void>((r) => waiting.set(key, r));
  link.send([{
    topic: pingTopic,
    partition: 1,
    key,
    headers: shaped ? { _event_: "1", _rx_: "20261126" + key } : undefined,
    value,
  }]);
  return p.then(() => void waiting.delete(key));
};

// ---- the mesh: this process calls demo.echo in a mesh_app process ----
const t = topicsFor("meshbench");
const monitor = await startMonitor([...t.args, ...TOKEN]);
const common = [...meshArgs(monitor.port, t.args), ...TOKEN, "-Dlog.level=warning"];
const platform = new Platform({
  dir: "/nonexistent",
  env: {},
  args: ["-Dapplication.name=bench", ...common],
});
const connector = connectToCloud(platform)!;
await connector.joined;
const po = new PostOffice({}, platform);
const fixture = here("../tests/fixtures/mesh_app.ts");

const startT0 = performance.now();
const app = await child([fixture, "-Dapplication.name=responder", ...common], /^JOINED/m);
while (!connector.reaches("demo.echo")) await new Promise((r) => setTimeout(r, 5));
await po.request({ to: "demo.echo", body: 0 }, 10_000);
const startToCallable = performance.now() - startT0;

const request = async () => {
  await po.request({ to: "demo.echo", body: "ping" }, 10_000);
};

// Both paths (and the broker's JIT) are warmed up first: throughput keeps rising for the first
// few thousand requests of a cold run. Then short rounds in pairs, alternating which side goes
// first. This machine's throughput drifts by up to 2x within a minute, so each pair's ratio
// compares like with like, and the figures are medians: of the rates, and of the pair ratios.
const ROUNDS = 12;
const baseLat: number[] = [], meshLat: number[] = [];
const baseRate: number[] = [], meshRate: number[] = [];
await latencies(ping, 200);
await latencies(request, 200);
for (let i = 0; i < 3; i++) {
  await throughput(ping, Math.round(CONC / ROUNDS));
  await throughput(request, Math.round(CONC / ROUNDS));
}
for (let r = 0; r < ROUNDS; r++) {
  const pair = [
    async () => {
      baseLat.push(...await latencies(ping, Math.round(SEQ / ROUNDS)));
      baseRate.push(await throughput(ping, Math.round(CONC / ROUNDS)));
    },
    async () => {
      meshLat.push(...await latencies(request, Math.round(SEQ / ROUNDS)));
      meshRate.push(await throughput(request, Math.round(CONC / ROUNDS)));
    },
  ];
  if (r % 2 === 1) pair.reverse();
  for (const run of pair) await run();
}
const pairRatios = meshRate.map((m, i) => m / baseRate[i]);
peer.proc.kill("SIGTERM");
await link.close();
const base = { lat: baseLat, rate: median(baseRate) };
const mesh = { lat: meshLat, rate: median(meshRate) };

async function dropTime(signal: NodeJS.Signals): Promise<number> {
  const victim = await child([fixture, "-Dapplication.name=victim", ...common], /^JOINED (\w+)/m);
  const origin = /^JOINED (\w+)/m.exec(victim.line)![1];
  while (!connector.knows(origin)) await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  victim.proc.kill(signal);
  while (connector.knows(origin)) await new Promise((r) => setTimeout(r, 2));
  return performance.now() - t0;
}
// CPU of this (idle) mesh member over 3 s.
const idle0 = process.cpuUsage();
await new Promise((r) => setTimeout(r, 3000));
const idle = process.cpuUsage(idle0);
const idleMsPerS = (idle.user + idle.system) / 1000 / 3;

const stopMs = await dropTime("SIGTERM");
const killMs = await dropTime("SIGKILL");

app.proc.kill("SIGTERM");
await connector.stop();
await monitor.stop();

const f = (x: number) => x.toFixed(2);
console.log(
  `Deno ${process.versions.deno}; broker ${BROKERS}; ${ROUNDS} interleaved rounds; ` +
    `${SEQ} sequential and ${CONC} at ${IN_FLIGHT} in flight per side in all` +
    (TOKEN.length ? "; with a mesh token" : ""),
);
console.log(
  `throughput rounds /s: baseline ${baseRate.map(Math.round).join(", ")}; ` +
    `mesh ${meshRate.map(Math.round).join(", ")}`,
);
console.log(
  `mesh / baseline per pair: ${pairRatios.map((x) => x.toFixed(2)).join(", ")}; ` +
    `median ${median(pairRatios).toFixed(2)}, ` +
    `quartiles ${pct(pairRatios, 0.25).toFixed(2)}-${pct(pairRatios, 0.75).toFixed(2)}\n`,
);
console.log("| measure | baseline ping-pong | mesh request | mesh / baseline |");
console.log("| --- | ---: | ---: | ---: |");
console.log(
  `| p50 latency, 1 in flight (ms) | ${f(pct(base.lat, 0.5))} | ${f(pct(mesh.lat, 0.5))} | ${
    (pct(mesh.lat, 0.5) / pct(base.lat, 0.5)).toFixed(2)
  } |`,
);
console.log(
  `| p99 latency, 1 in flight (ms) | ${f(pct(base.lat, 0.99))} | ${f(pct(mesh.lat, 0.99))} | ${
    (pct(mesh.lat, 0.99) / pct(base.lat, 0.99)).toFixed(2)
  } |`,
);
console.log(
  `| throughput, ${IN_FLIGHT} in flight (/s) | ${Math.round(base.rate)} | ${
    Math.round(mesh.rate)
  } | ${median(pairRatios).toFixed(2)} (median of pairs) |`,
);
console.log(`\nStart of an application process until callable: ${startToCallable.toFixed(0)} ms`);
console.log(`SIGTERM until this instance dropped it: ${stopMs.toFixed(0)} ms`);
console.log(`SIGKILL until this instance dropped it: ${killMs.toFixed(0)} ms`);
console.log(`CPU of an idle mesh member: ${idleMsPerS.toFixed(1)} ms per second`);
process.exit(0);
