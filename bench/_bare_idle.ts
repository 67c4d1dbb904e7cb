// The floor under an idle mesh member (`idle_bench.ts`): the bare @platformatic/kafka client doing
// the least a member does, one consumer in a group of its own reading one idle topic (fetches
// that wait 500 ms at the broker, as the member's group reader's) and one connected producer. No
// commits, no monitor, no mesh; the group's heartbeat (which a member, reading without a group,
// does not send) once in 20 s instead of 3. Prints READY, then idles until killed.
import { Buffer } from "node:buffer";
import process from "node:process";
import { Admin, Consumer, MessagesStreamModes, Producer } from "@platformatic/kafka";

const BROKERS = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const topic = `bare-idle-${crypto.randomUUID()}`;
const admin = new Admin({ clientId: "bare-idle", bootstrapBrokers: BROKERS });
await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
await admin.close();
const producer = new Producer({ clientId: "bare-idle", bootstrapBrokers: BROKERS });
// One record, so that the producer holds its connection as a member's does.
await producer.send({
  messages: [{ topic, partition: 0, key: Buffer.from("k"), value: Buffer.from("v") }],
  acks: 1,
});
const consumer = new Consumer({
  groupId: `bare-idle-${crypto.randomUUID()}`,
  clientId: "bare-idle",
  bootstrapBrokers: BROKERS,
  maxWaitTime: 500,
  autocommit: false,
  heartbeatInterval: 20_000,
});
const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.LATEST });
stream.on("data", () => {});
process.on("SIGTERM", async () => {
  const admin = new Admin({ clientId: "bare-idle", bootstrapBrokers: BROKERS });
  await Promise.allSettled([stream.close(), consumer.close(), producer.close()]);
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
  process.exit(0);
});
console.log("READY");
