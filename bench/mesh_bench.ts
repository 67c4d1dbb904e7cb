/**
 * Requests across the mesh between two processes, on each Kafka client (`kafka.client`), against
 * floors in the same run: the bare `@platformatic/kafka` ping-pong (`platformatic_pingpong.ts`:
 * two processes, sends coalesced per turn of the event loop, acks=1), the same with records shaped
 * as the mesh's (key, headers, value size), and the ping-pong over the project's kafkajs link
 * (`KafkaLink`), all without envelopes, routing or inboxes. Also, per client: time from an
 * application's start until it is callable, from its stop (SIGTERM) or kill (SIGKILL) until this
 * instance has dropped it, and the CPU of an idle mesh member (the responder process). For every
 * side, the CPU per request of each process during the throughput rounds (this one, the
 * responder, the development broker).
 *
 * `deno run -A bench/mesh_bench.ts [sequential] [concurrent] [--token]` (defaults 1500 and 120000
 * per side) with a broker on KAFKA_BROKERS (default 127.0.0.1:9092). With `--token` the monitors
 * require a mesh token and the applications present one (and their identity secrets).
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Platform, PostOffice } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector } from "../connector/mod.ts";
import { KafkaLink } from "../internal.ts";
import { CLIENT_LIBRARIES, DEFAULT_CLIENT } from "../kafka/properties.ts";
import type { ClientLibrary } from "../kafka/properties.ts";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import type { MonitorProcess } from "../tests/_presence.ts";
import { platformaticPingPong } from "./platformatic_pingpong.ts";
import { cpuMs, cpuOfSides } from "./_cpu.ts";
import { child, median } from "./_child.ts";

const counts = process.argv.slice(2).filter((a) => /^\d+$/.test(a));
const SEQ = Number(counts[0] ?? 1500);
const CONC = Number(counts[1] ?? 120_000);
const TOKEN = process.argv.includes("--token") ? ["-Dmesh.tokens=mesh-bench-token"] : [];
const IN_FLIGHT = 64;
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

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

// ---- floor 1: the bare @platformatic/kafka ping-pong; and the same with the mesh's records ----
const floor = await platformaticPingPong();
const shapedFloor = await platformaticPingPong(true);

// ---- floor 2: ping-pong over KafkaLink (kafkajs) ----
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

// ---- the meshes: this process calls demo.echo in a mesh_app process, one mesh per client ----
interface Mesh {
  client: ClientLibrary;
  monitor: MonitorProcess;
  connector: KafkaConnector;
  app: ChildProcess;
  common: string[];
  startToCallable: number;
  request: () => Promise<void>;
}
const fixture = here("../tests/fixtures/mesh_app.ts");

async function mesh(client: ClientLibrary): Promise<Mesh> {
  const t = topicsFor(`meshbench.${client}`);
  const kafka = [`-Dbootstrap.servers=${BROKERS}`, `-Dkafka.client=${client}`];
  const monitor = await startMonitor([...t.args, ...TOKEN], kafka);
  const common = [...meshArgs(monitor.port, t.args, kafka), ...TOKEN, "-Dlog.level=warning"];
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: [`-Dapplication.name=bench-${client}`, ...common],
  });
  const connector = connectToCloud(platform)!;
  await connector.joined;
  const po = new PostOffice({}, platform);
  const t0 = performance.now();
  const app = await child([fixture, "-Dapplication.name=responder", ...common], /^JOINED/m);
  while (!connector.reaches("demo.echo")) await new Promise((r) => setTimeout(r, 5));
  await po.request({ to: "demo.echo", body: 0 }, 10_000);
  const startToCallable = performance.now() - t0;
  const request = async () => {
    await po.request({ to: "demo.echo", body: "ping" }, 10_000);
  };
  return { client, monitor, connector, app: app.proc, common, startToCallable, request };
}
// The default client's mesh first in every listing.
const clients = [DEFAULT_CLIENT, ...CLIENT_LIBRARIES.filter((c) => c !== DEFAULT_CLIENT)];
const meshes: Mesh[] = [];
for (const c of clients) meshes.push(await mesh(c));

// Every side (and the broker's JIT) is warmed up first, with 30,000 requests: a cold mesh's
// throughput at 64 in flight keeps rising that long (in chunks of 3,000: 12k/s, then 21-31k/s up
// to the tenth, 31-36k/s after). Then rounds of 10,000 requests (about 0.3 s), rotating which side
// goes first: in rounds of 3,000 a collection pause or a drift weighed on a round's rate as much
// as the side did. This machine's throughput drifts by up to 2x within a minute, so each round's
// ratios compare like with like, and the figures are medians: of the rates, and of the per-round
// ratios.
const ROUNDS = 12;
const WARM_UP_ROUNDS = 10;
const sides = [
  { name: "@platformatic/kafka ping-pong (floor)", one: floor.one, peer: floor.peerPid },
  {
    name: "the same, records shaped as the mesh's",
    one: shapedFloor.one,
    peer: shapedFloor.peerPid,
  },
  { name: "kafkajs ping-pong (KafkaLink)", one: ping, peer: peer.proc.pid! },
  ...meshes.map((m) => ({
    name: `mesh request, kafka.client=${m.client}`,
    one: m.request,
    peer: m.app.pid!,
  })),
].map((s) => ({ ...s, lat: [] as number[], rate: [] as number[], cpu: [0, 0, 0], count: 0 }));
for (const s of sides) await latencies(s.one, 200);
for (let i = 0; i < WARM_UP_ROUNDS; i++) {
  for (const s of sides) await throughput(s.one, 3000);
}
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < sides.length; k++) {
    const s = sides[(k + r) % sides.length];
    s.lat.push(...await latencies(s.one, Math.round(SEQ / ROUNDS)));
    // CPU by process: this one (the caller; it also hosts the other sides' idle clients), the
    // side's responder, and the development broker.
    const c0 = cpuOfSides(s.peer);
    s.rate.push(await throughput(s.one, Math.round(CONC / ROUNDS)));
    cpuOfSides(s.peer).forEach((c, i) => s.cpu[i] += c - c0[i]);
    s.count += Math.round(CONC / ROUNDS);
  }
}
await floor.close();
await shapedFloor.close();
peer.proc.kill("SIGTERM");
await link.close();

async function dropTime(m: Mesh, signal: NodeJS.Signals): Promise<number> {
  const victim = await child([fixture, "-Dapplication.name=victim", ...m.common], /^JOINED (\w+)/m);
  const origin = /^JOINED (\w+)/m.exec(victim.line)![1];
  while (!m.connector.knows(origin)) await new Promise((r) => setTimeout(r, 5));
  const t0 = performance.now();
  victim.proc.kill(signal);
  while (m.connector.knows(origin)) await new Promise((r) => setTimeout(r, 2));
  return performance.now() - t0;
}
// CPU of the idle responder process over 5 s (after 3 s to settle from the load), and the drop
// times.
const after = new Map<ClientLibrary, { idle: number; stop: number; kill: number }>();
await new Promise((r) => setTimeout(r, 3000));
for (const m of meshes) {
  const c0 = cpuMs(m.app.pid!);
  await new Promise((r) => setTimeout(r, 5000));
  const idle = (cpuMs(m.app.pid!) - c0) / 5;
  after.set(m.client, {
    idle,
    stop: await dropTime(m, "SIGTERM"),
    kill: await dropTime(m, "SIGKILL"),
  });
}
for (const m of meshes) {
  m.app.kill("SIGTERM");
  await m.connector.stop();
  await m.monitor.stop();
}

// ---- report ----
const f = (x: number) => x.toFixed(2);
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
console.log(
  `Deno ${process.versions.deno}; broker ${BROKERS}; ${ROUNDS} rotating rounds; ` +
    `${SEQ} sequential and ${CONC} at ${IN_FLIGHT} in flight per side in all` +
    (TOKEN.length ? "; with a mesh token" : "") + "\n",
);
for (const s of sides) console.log(`${s.name}: rounds /s ${s.rate.map(Math.round).join(", ")}`);
const [pf, sf, kj] = sides;
console.log(
  `\n| side | p50 (ms) | p99 (ms) | ${IN_FLIGHT} in flight (/s) | ` +
    `/ platformatic floor (p50; rate) | / shaped floor (rate) | / kafkajs ping-pong (rate) |`,
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const s of sides) {
  console.log(
    `| ${s.name} | ${f(pct(s.lat, 0.5))} | ${f(pct(s.lat, 0.99))} | ${
      Math.round(median(s.rate))
    } | ` +
      `${f(pct(s.lat, 0.5) / pct(pf.lat, 0.5))}; ${f(ratio(s.rate, pf.rate))} | ` +
      `${f(ratio(s.rate, sf.rate))} | ${f(ratio(s.rate, kj.rate))} |`,
  );
}
console.log(
  `\n| side, CPU per request at ${IN_FLIGHT} in flight (µs) | caller process | responder process | broker |`,
);
console.log("| --- | ---: | ---: | ---: |");
for (const s of sides) {
  const [self, peerCpu, brokerCpu] = s.cpu.map((c) => (c * 1000 / s.count).toFixed(1));
  console.log(`| ${s.name} | ${self} | ${peerCpu} | ${brokerCpu === "NaN" ? "-" : brokerCpu} |`);
}
const [first, ...rest] = meshes;
for (const m of rest) {
  const a = sides.find((s) => s.one === first.request)!;
  const b = sides.find((s) => s.one === m.request)!;
  console.log(
    `\nmesh on ${first.client} / mesh on ${m.client} (rate, median of rounds): ${
      f(ratio(a.rate, b.rate))
    }`,
  );
}
console.log(
  "\n| per client | start until callable (ms) | SIGTERM dropped (ms) | SIGKILL dropped (ms) | idle member CPU (ms/s) |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const m of meshes) {
  const a = after.get(m.client)!;
  console.log(
    `| ${m.client} | ${m.startToCallable.toFixed(0)} | ${a.stop.toFixed(0)} | ${
      a.kill.toFixed(0)
    } | ${a.idle.toFixed(1)} |`,
  );
}
process.exit(0);
