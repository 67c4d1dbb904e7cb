/**
 * The send queue's own cost per record (`kafka/_send_queue.ts`, shared by both Kafka clients):
 * turns of 64 single-record sends of the mesh's shape to one partition, each request answered at
 * once, so that nothing but the queue's bookkeeping is timed. Prints the best and the median of 7
 * rounds of 5,000 turns, in µs a record. Compare trees by running it from each, alternating.
 *
 * `deno run -A bench/send_queue_bench.ts`
 *
 * @module
 */
import { SendQueue } from "../kafka/_send_queue.ts";

const value = new Uint8Array(160);
const queue = new SendQueue(() => Promise.resolve(), () => Promise.resolve());
const record = {
  topic: "app.multiplex.0001",
  partition: 3,
  key: "0123456789abcdef0123456789abcdef",
  headers: { _event_: "1" },
  value,
};

async function turns(n: number): Promise<void> {
  for (let t = 0; t < n; t++) {
    const sent: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) sent.push(queue.send([record]));
    await Promise.all(sent);
  }
}

await turns(5000); // warm-up
const perRecord: number[] = [];
for (let r = 0; r < 7; r++) {
  const t0 = performance.now();
  await turns(5000);
  perRecord.push((performance.now() - t0) * 1000 / (5000 * 64));
}
perRecord.sort((a, b) => a - b);
console.log(
  `send queue: ${perRecord[0].toFixed(3)} µs a record (best of 7), median ${
    perRecord[3].toFixed(3)
  }`,
);
