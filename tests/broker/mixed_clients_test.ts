// One mesh whose members use different Kafka clients (kafka.client): the records on the wire are
// the same, so a member on @platformatic/kafka and one on kafkajs, under a monitor on either,
// call each other, and a broadcast reaches both once.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostOffice } from "../../mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import {
  BROKERS,
  eventually,
  meshArgs,
  meshMember,
  startMonitor,
  topicsFor,
} from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { stopAll } from "../_processes.ts";

const monitors: MonitorProcess[] = [];
const connectors: KafkaConnector[] = [];
after(async () => {
  for (const c of connectors) await c.stop();
  await stopAll(monitors);
});

describe("a mesh of members on different Kafka clients", () => {
  for (const monitorClient of ["kafkajs", "platformatic"]) {
    it(`serves requests both ways and a broadcast once each (monitor on ${monitorClient})`, async () => {
      const t = topicsFor(`mixed.${monitorClient}`);
      const kafka = [`-Dbootstrap.servers=${BROKERS}`];
      const monitor = await startMonitor(t.args, [...kafka, `-Dkafka.client=${monitorClient}`]);
      monitors.push(monitor);
      const base = meshArgs(monitor.port, t.args, kafka);
      const broadcasts = { pa: 0, kb: 0 };
      const a = await meshMember("pa", [...base, "-Dkafka.client=platformatic"], (p) => {
        p.register("pa.hello", (_h, body) => `pa got ${body}`);
        p.register("both.count", () => void broadcasts.pa++);
      });
      const b = await meshMember("kb", [...base, "-Dkafka.client=kafkajs"], (p) => {
        p.register("kb.hello", (_h, body) => `kb got ${body}`);
        p.register("both.count", () => void broadcasts.kb++);
      });
      connectors.push(a.connector, b.connector);
      await eventually(
        () => a.connector.reaches("kb.hello") && b.connector.reaches("pa.hello"),
        10_000,
        "each member's route in the other's table",
      );
      let ok = 0;
      await Promise.all(Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 25; i++) {
          const [from, to] = (w + i) % 2 ? [a, "kb"] : [b, "pa"];
          const r = await new PostOffice({}, from.platform).request(
            { to: `${to}.hello`, body: i },
            5000,
          );
          assert.equal(r.body, `${to} got ${i}`);
          ok++;
        }
      }));
      assert.equal(ok, 400);
      await new PostOffice({}, a.platform).broadcast({ to: "both.count", body: 1 });
      await eventually(() => broadcasts.pa === 1 && broadcasts.kb === 1, 5000, "the broadcast");
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(broadcasts, { pa: 1, kb: 1 });
    });
  }
});
