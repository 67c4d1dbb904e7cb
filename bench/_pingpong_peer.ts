// The baseline's other process: echoes every record of <topic> partition 1 to partition 0,
// with the same Kafka client and settings as the connector (KafkaLink), and no mesh logic.
// Usage: deno run -A bench/_pingpong_peer.ts <brokers> <topic>
import process from "node:process";
import { KafkaLink } from "../internal.ts";

const [brokers, topic] = process.argv.slice(2);
const link = new KafkaLink({ brokers: brokers.split(","), clientId: "pingpong-peer" });
const c = link.consumePartition(topic, 1, (r) => {
  link.send([{ topic, partition: 0, key: r.key, headers: r.headers, value: r.value }]).catch((e) =>
    console.error(`echo failed: ${e.message}`)
  );
});
await c.ready;
console.log("PEER READY");
process.on("SIGTERM", () => link.close().finally(() => process.exit(0)));
