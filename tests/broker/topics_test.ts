// kafka.topics=pre-allocated, for managed clusters where applications may not create topics:
// the mesh creates nothing, and a monitor refuses to start, listing what an administrator must
// create, until the topics are there with enough partitions.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { testKafka } from "../_kafka.ts";
import { CLIENT_LIBRARIES } from "../../kafka/properties.ts";

const admin = new Kafka({
  clientId: "topics-test",
  brokers: BROKERS.split(","),
  logLevel: logLevel.NOTHING,
})
  .admin();
const processes: DenoProcess[] = [];

after(async () => {
  await stopAll(processes);
  await admin.disconnect().catch(() => {});
});

describe("kafka.topics=pre-allocated", () => {
  it("lists what is missing at start, creates nothing, and runs once an administrator made it", async () => {
    await admin.connect();
    const t = topicsFor("prealloc");
    const args = [
      ...t.args,
      "-Dkafka.topics=pre-allocated",
      "-Dapp.partitions.per.topic=2",
      "-Dmax.virtual.topics=4",
      "-Dmax.closed.user.groups=3",
    ];
    // Half of it there, one topic with too few partitions.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: `${t.prefix}.0002`, numPartitions: 1, replicationFactor: 1 }],
    });
    const refused = spawnDeno("presence/main.ts", [
      "-Dserver.port=0",
      "-Dserver.host=127.0.0.1",
      `-Dbootstrap.servers=${BROKERS}`,
      ...args,
    ]);
    processes.push(refused);
    const line = await refused.waitFor(/cannot start/, 30_000);
    assert.match(line, new RegExp(`${t.monitorTopic} \\(missing; needs 4 partitions\\)`));
    assert.match(line, new RegExp(`${t.prefix}\\.0001 \\(missing; needs 2 partitions\\)`));
    assert.match(line, new RegExp(`${t.prefix}\\.0002 \\(has 1 partitions; needs 2\\)`));
    await refused.exited;
    assert.equal(refused.proc.exitCode, 1);

    await admin.createPartitions({ topicPartitions: [{ topic: `${t.prefix}.0002`, count: 2 }] });
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: t.monitorTopic, numPartitions: 4, replicationFactor: 1 },
        { topic: `${t.prefix}.0001`, numPartitions: 2, replicationFactor: 1 },
      ],
    });
    const monitor = await startMonitor(args);
    processes.push(monitor);
    const app = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=prealloc-app",
      ...meshArgs(monitor.port, args),
    ]);
    processes.push(app);
    await app.waitFor(/^JOINED /, 30_000);
    const health = await monitor.get("/health");
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.match(JSON.stringify(health.body), /pre-allocated/);
    const ours = (await admin.listTopics()).filter((n) =>
      n.startsWith(t.monitorTopic.split(".")[0])
    )
      .sort();
    assert.deepEqual(ours, [`${t.prefix}.0001`, `${t.prefix}.0002`, t.monitorTopic].sort());
  });
});

describe("KafkaClient.topicPartitions(only)", () => {
  for (const client of CLIENT_LIBRARIES) {
    it(`${client}: gives the topics asked for, every topic when one is missing, and creates none`, async () => {
      const kafka = testKafka(`only-${client}`, BROKERS.split(","), { client });
      try {
        const prefix = topicsFor("only").prefix;
        const [a, b, missing] = [`${prefix}.a`, `${prefix}.b`, `${prefix}.missing`];
        await kafka.ensureTopic(a, 3);
        await kafka.ensureTopic(b, 2);
        const some = await kafka.topicPartitions([a, b]);
        assert.equal(some.get(a), 3);
        assert.equal(some.get(b), 2);
        const withMissing = await kafka.topicPartitions([a, missing]);
        assert.equal(withMissing.get(a), 3);
        assert.equal(withMissing.has(missing), false);
        assert.ok(withMissing.has(b), "a missing topic lists them all");
        assert.equal((await kafka.topicPartitions()).has(missing), false, "nothing was created");
      } finally {
        await kafka.close();
      }
    });
  }
});
