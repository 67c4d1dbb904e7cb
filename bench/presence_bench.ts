/**
 * How long a lease takes: websocket connect → `ready`, and close → release (the `leave`
 * announcement arriving on the group's partition), against a bare Kafka round trip on the same
 * broker in the same run (write one record to a partition and read it back).
 *
 * `deno run -A bench/presence_bench.ts [rounds] [--token]` with a broker on KAFKA_BROKERS
 * (default 127.0.0.1:9092), e.g. after `deno task kafka start`. With `--token` the monitor
 * requires a mesh token (`mesh.tokens`) and every client presents it, with an identity secret
 * (owned origins), as an application does: the join time with credentials, to compare with a
 * run without.
 *
 * `deno run -A bench/presence_bench.ts --burst [apps] [rounds] [--ahead]`: `apps` (default 288)
 * websockets connect to one monitor at once, `rounds` times (default 3), the first burst on topics
 * that do not exist yet (the bench's topic prefix is new each run: a fresh cluster, as far as the
 * mesh is concerned), reported apart; the time from connect to `ready` of each, and leases per
 * second. With `--ahead` the monitor makes the topics the burst leases at its start
 * (`presence.topics.ahead`).
 *
 * @module
 */
import process from "node:process";
import { eventOf, KafkaLink } from "../internal.ts";
import { BROKERS, connect, startMonitor, topicsFor } from "../tests/_presence.ts";
import { credentialProtocols } from "../protocol/credentials.ts";

const NUMBERS = process.argv.filter((a) => /^\d+$/.test(a)).map(Number);
const BURST = process.argv.includes("--burst");
const ROUNDS = BURST ? NUMBERS[1] ?? 3 : NUMBERS[0] ?? 30;
const APPS = BURST ? NUMBERS[0] ?? 288 : 1;
const TOKEN = process.argv.includes("--token") ? "bench-mesh-token" : undefined;
const AHEAD = process.argv.includes("--ahead") ? Math.ceil(APPS / 32) : 0;

function stats(xs: number[]): { p50: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] };
}

const t = topicsFor("bench");
const monitor = await startMonitor([
  ...t.args,
  ...(TOKEN ? [`-Dmesh.tokens=${TOKEN}`] : []),
  // Every client of the burst comes from 127.0.0.1.
  ...(BURST
    ? [
      `-Dpresence.max.connections.per.address=${APPS + 10}`,
      `-Dpresence.max.pending=${APPS + 10}`,
      `-Dpresence.max.pending.per.address=${APPS + 10}`,
      `-Dserver.max.connections.per.address=${APPS + 10}`,
    ]
    : []),
  ...(AHEAD ? [`-Dpresence.topics.ahead=${AHEAD}`] : []),
]);
if (BURST) {
  try {
    await burst();
  } finally {
    await monitor.stop();
  }
  process.exit(0);
}

// `APPS` websockets at once: one burst on new topics, then `ROUNDS` more on topics that exist.
async function burst(): Promise<void> {
  let fresh: number[] = [];
  let freshRate = 0;
  const all: number[] = [];
  const rates: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const t0 = performance.now();
    const clients = Array.from({ length: APPS }, () => connect(monitor.port));
    const times = await Promise.all(clients.map((c) => c.ready.then(() => performance.now() - t0)));
    const took = Math.max(...times);
    if (round > 0) {
      all.push(...times);
      rates.push(APPS / (took / 1000));
    } else {
      fresh = times;
      freshRate = APPS / (took / 1000);
    }
    const s = stats(times);
    console.log(
      `${round === 0 ? "new topics" : `round ${round}`}: p50 ${s.p50.toFixed(0)} ms, p99 ` +
        `${s.p99.toFixed(0)} ms, last ${took.toFixed(0)} ms, ${
          (APPS / (took / 1000)).toFixed(0)
        } leases/s`,
    );
    await Promise.all(clients.map((c) => c.close()));
    // The leases are released (each close is a del on partition 0) before the next burst.
    await new Promise((r) => setTimeout(r, 3000));
  }
  const s = stats(all), n = stats(fresh);
  const f = (x: number) => x.toFixed(0);
  console.log(
    `\nDeno ${process.versions.deno}, ${APPS} websockets at once to one monitor, broker ` +
      `${BROKERS}, ${AHEAD ? `presence.topics.ahead=${AHEAD}` : "topics made as leased"}\n`,
  );
  console.log("| connect → ready | p50 ms | p90 ms | p99 ms | max ms | leases/s (per round) |");
  console.log("| --- | ---: | ---: | ---: | ---: | --- |");
  console.log(
    `| ${APPS} at once, new topics | ${f(n.p50)} | ${f(n.p90)} | ${f(n.p99)} | ${f(n.max)} | ` +
      `${freshRate.toFixed(0)} |`,
  );
  console.log(
    `| ${APPS} at once, ${ROUNDS} rounds (topics exist) | ${f(s.p50)} | ${f(s.p90)} | ` +
      `${f(s.p99)} | ${f(s.max)} | ${rates.map((r) => r.toFixed(0)).join(", ")} |`,
  );
}
const link = new KafkaLink({ brokers: BROKERS.split(","), clientId: "presence-bench" });
const leaves = new Map<string, () => void>();
const echo = new Map<string, () => void>();
try {
  const group = link.consumePartition(t.monitorTopic, 1, (r) => {
    if (r.headers.bench !== undefined) return echo.get(r.headers.bench)?.();
    const e = eventOf(r);
    if (e?.headers.type === "leave") leaves.get(e.headers.origin)?.();
  });
  await group.ready;

  const kafkaRoundTrip: number[] = [], lease: number[] = [], release: number[] = [];
  // Warm up once each.
  for (let i = 0; i <= ROUNDS; i++) {
    const nonce = crypto.randomUUID();
    const back = new Promise<void>((r) => echo.set(nonce, r));
    let t0 = performance.now();
    await link.send([{
      topic: t.monitorTopic,
      partition: 1,
      headers: { bench: nonce },
      value: "x",
    }]);
    await back;
    const rt = performance.now() - t0;

    t0 = performance.now();
    const c = connect(monitor.port, {
      protocols: credentialProtocols(TOKEN),
      identity: TOKEN ? crypto.randomUUID() : undefined,
    });
    await c.ready;
    const leased = performance.now() - t0;

    const left = new Promise<void>((r) => leaves.set(c.origin, r));
    t0 = performance.now();
    c.ws.close(1000, "bench");
    await left;
    const released = performance.now() - t0;
    if (i > 0) {
      kafkaRoundTrip.push(rt);
      lease.push(leased);
      release.push(released);
    }
  }
  const k = stats(kafkaRoundTrip), l = stats(lease), r = stats(release);
  const f = (x: number) => x.toFixed(1);
  console.log(
    `Deno ${process.versions.deno}, ${ROUNDS} rounds, one monitor, broker ${BROKERS}, ` +
      `${TOKEN ? "with a mesh token and an identity secret" : "no mesh token"}\n`,
  );
  console.log("| measure | p50 ms | p90 ms | max ms | p50 / Kafka round trip |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  console.log(`| Kafka round trip (baseline) | ${f(k.p50)} | ${f(k.p90)} | ${f(k.max)} | 1.0 |`);
  console.log(
    `| connect → ready | ${f(l.p50)} | ${f(l.p90)} | ${f(l.max)} | ${(l.p50 / k.p50).toFixed(1)} |`,
  );
  console.log(
    `| close → release announced | ${f(r.p50)} | ${f(r.p90)} | ${f(r.max)} | ${
      (r.p50 / k.p50).toFixed(1)
    } |`,
  );
} finally {
  await link.close();
  await monitor.stop();
}
