// The baseline's other process: echoes every record of <topic> partition 1 (or <partition>) to
// partition 0, with the same Kafka client and settings as the connector, and no mesh logic.
// Usage: deno run -A bench/_pingpong_peer.ts <brokers> <topic> [kafkajs|platformatic] [partition]
import process from "node:process";
import { testKafka } from "../tests/_kafka.ts";
import type { ClientLibrary } from "../kafka/properties.ts";

const [brokers, topic, client = "kafkajs", partition = "1"] = process.argv.slice(2);
const link = testKafka("pingpong-peer", brokers.split(","), { client: client as ClientLibrary });
const c = link.consumePartition(topic, Number(partition), (r) => {
  link.send([{ topic, partition: 0, key: r.key, headers: r.headers, value: r.value }]).catch((e) =>
    console.error(`echo failed: ${e.message}`)
  );
});
await c.ready;
console.log("PEER READY");
process.on("SIGTERM", () => link.close().finally(() => process.exit(0)));
