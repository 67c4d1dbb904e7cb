/**
 * The floor under `sharing_bench.ts`: the same sharing without the mesh. This process sends
 * records of the mesh's shape at 64 in flight over the mesh's Kafka client to partitions 1..N of
 * one topic, each read by its own echo process (`_pingpong_peer.ts`, as a consumer group of N
 * gives each member one partition), which writes every record back to partition 0 for this
 * process. N = 1, 2, 4; the partition chosen per record in turn (what a producer's round-robin
 * partitioner does), per turn of the event loop (one partition a turn, the next turn the next),
 * or per chunk of 64 / N records in turn (N batches on their way side by side, each to its own
 * process: the most N processes could overlap). Rounds rotate the order; each rate is compared
 * with N = 1 of the same round.
 *
 * `deno run -A bench/sharing_floor.ts [rounds, default 8] [records a round, default 6000]` with a
 * broker on KAFKA_BROKERS (default 127.0.0.1:9092).
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { testKafka } from "../tests/_kafka.ts";
import { BROKERS } from "../tests/_presence.ts";
import { child, median } from "./_child.ts";

const counts = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const ROUNDS = counts[0] ?? 8;
const PER_ROUND = counts[1] ?? 6000;
const IN_FLIGHT = 64;
/** How the partition (the echo process) of each record is chosen. */
type By = "record" | "turn" | "chunk";
const topic = `share.${crypto.randomUUID().slice(0, 8)}`;
const link = testKafka("sharing-floor", BROKERS.split(","));
await link.ensureTopic(topic, 5);
const peers: ChildProcess[] = [];
const peer = fileURLToPath(new URL("./_pingpong_peer.ts", import.meta.url));
try {
  for (let p = 1; p <= 4; p++) {
    peers.push((await child([peer, BROKERS, topic, "platformatic", String(p)], /PEER READY/)).proc);
  }
  const waiting = new Map<string, () => void>();
  await link.consumePartition(topic, 0, (r) => waiting.get(r.key!)?.()).ready;
  const value = new Uint8Array(160);
  let n = 0;
  let turn = 0;
  let turnEnds = false;
  // One record to partition `p`, resolving when it is back.
  const ping = (p: number) => {
    const key = String(++n).padStart(32, "0");
    const back = new Promise<void>((r) => waiting.set(key, r));
    link.send([{ topic, partition: p, key, headers: { _event_: "1", _rx_: "x" + key }, value }]);
    return back.then(() => void waiting.delete(key));
  };
  // The partition of the next record among `parts`: in turn per record, per turn, or per chunk.
  const chooser = (parts: number, by: By) => {
    let i = 0;
    let seen = -1;
    const chunk = IN_FLIGHT / parts;
    if (by === "chunk") return () => 1 + (Math.floor(i++ / chunk) % parts);
    return () => {
      if (!turnEnds) {
        turnEnds = true;
        queueMicrotask(() => {
          turn++;
          turnEnds = false;
        });
      }
      if (by === "record") return 1 + (i++ % parts);
      if (seen !== turn) {
        seen = turn;
        i++;
      }
      return 1 + (i % parts);
    };
  };
  const run = async (parts: number, by: By, total: number) => {
    const next = chooser(parts, by);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      for (let k = 0; k < total / IN_FLIGHT; k++) await ping(next());
    }));
    return total / ((performance.now() - t0) / 1000);
  };
  const CASES: [number, By][] = [
    [1, "record"],
    [2, "record"],
    [4, "record"],
    [2, "turn"],
    [4, "turn"],
    [2, "chunk"],
    [4, "chunk"],
  ];
  // Warm-up: each echo process serves 20,000 records first (as each instance in sharing_bench.ts).
  await run(4, "record", 4 * 20_000);
  for (const [parts, by] of CASES) await run(parts, by, 3000);
  const rates = CASES.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < CASES.length; k++) {
      const i = (k + r) % CASES.length;
      rates[i].push(await run(CASES[i][0], CASES[i][1], PER_ROUND));
    }
  }
  console.log(
    `Deno ${process.versions.deno}, broker ${BROKERS}, ${ROUNDS} rotating rounds of ` +
      `${PER_ROUND} records at ${IN_FLIGHT} in flight, ${navigator.hardwareConcurrency} cores\n`,
  );
  console.log(
    "| partitions (echo processes) | chosen | rate, median of rounds (/s) | / 1 (median of rounds) |",
  );
  console.log("| ---: | --- | ---: | ---: |");
  const chosen = { record: "per record", turn: "per turn", chunk: `per ${IN_FLIGHT} / N records` };
  CASES.forEach(([parts, by], i) => {
    const ratio = median(rates[i].map((x, r) => x / rates[0][r]));
    console.log(
      `| ${parts} | ${chosen[by]} | ${Math.round(median(rates[i]))} | ${ratio.toFixed(2)} |`,
    );
  });
} finally {
  for (const p of peers) p.kill("SIGTERM");
  await link.close();
}
process.exit(0);
