/**
 * The Kafka link alone against the bare `@platformatic/kafka` floor: a ping-pong over the mesh's
 * `KafkaClient` (`kafka.client` from the first argument) with records of the mesh's shape (32-hex
 * key, `_event_`/`_rx_` headers, a 160-byte value), between this process and
 * `_pingpong_peer.ts`, alternating with the floor (`platformatic_pingpong.ts`) in rounds of 3,000
 * at 64 in flight. Tells what the link costs apart from the mesh on top of it: the rate, and the
 * CPU per round trip of each process (this one, the peer, the development broker).
 *
 * `deno run -A bench/link_pingpong.ts [platformatic|kafkajs] [rounds]` (defaults platformatic, 8)
 * with a broker on KAFKA_BROKERS (default 127.0.0.1:9092).
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { testKafka } from "../tests/_kafka.ts";
import { BROKERS } from "../tests/_presence.ts";
import type { ClientLibrary } from "../kafka/properties.ts";
import { platformaticPingPong } from "./platformatic_pingpong.ts";
import { cpuOfSides } from "./_cpu.ts";

const client = (process.argv[2] ?? "platformatic") as ClientLibrary;
const ROUNDS = Number(process.argv[3] ?? 8);
const topic = `pp.${crypto.randomUUID().slice(0, 8)}`;
const link = testKafka("link-pingpong", BROKERS.split(","), { client });
await link.ensureTopic(topic, 2);
const peer = spawn(
  process.execPath,
  [
    "run",
    "-A",
    fileURLToPath(new URL("./_pingpong_peer.ts", import.meta.url)),
    BROKERS,
    topic,
    client,
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
await new Promise<void>((resolve) => {
  peer.stdout!.on("data", (d: Uint8Array) => {
    if (new TextDecoder().decode(d).includes("PEER READY")) resolve();
  });
});
const waiting = new Map<string, () => void>();
await link.consumePartition(topic, 0, (r) => waiting.get(r.key!)?.()).ready;
let n = 0;
const value = new Uint8Array(160);
const ping = () => {
  const key = String(++n).padStart(32, "0");
  const back = new Promise<void>((r) => waiting.set(key, r));
  link.send([{
    topic,
    partition: 1,
    key,
    headers: { _event_: "1", _rx_: "20261126" + key },
    value,
  }]);
  return back.then(() => void waiting.delete(key));
};
const floor = await platformaticPingPong();
const rate = async (one: () => Promise<void>, count = 3000) => {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    for (let i = 0; i < count / 64; i++) await one();
  }));
  return count / ((performance.now() - t0) / 1000);
};
for (let i = 0; i < 200; i++) await ping();
await rate(ping);
await rate(floor.one);
const ratios: number[] = [];
const rates: number[][] = [[], []];
// CPU per round trip, by process: this one, the peer, the broker (when it is the dev broker).
const cpu = [[0, 0, 0], [0, 0, 0]];
const measured = async (side: number, one: () => Promise<void>, peerPid: number) => {
  const c0 = cpuOfSides(peerPid);
  const r = await rate(one);
  cpuOfSides(peerPid).forEach((c, i) => cpu[side][i] += c - c0[i]);
  return r;
};
for (let r = 0; r < ROUNDS; r++) {
  const a = await measured(0, ping, peer.pid!);
  const b = await measured(1, floor.one, floor.peerPid);
  rates[0].push(a);
  rates[1].push(b);
  ratios.push(a / b);
}
const median = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log(
  `link ping-pong (kafka.client=${client}) ${Math.round(median(rates[0]))}/s, floor ` +
    `${Math.round(median(rates[1]))}/s at 64 in flight; link / floor, median of ${ROUNDS} ` +
    `rounds: ${median(ratios).toFixed(2)}`,
);
const us = (side: number) => cpu[side].map((c) => (c * 1000 / (ROUNDS * 3000)).toFixed(1));
console.log(
  `CPU per round trip (µs), this process / peer / broker: link ${us(0).join(" / ")}; floor ` +
    `${us(1).join(" / ")}`,
);
peer.kill("SIGTERM");
await floor.close();
await link.close();
process.exit(0);
