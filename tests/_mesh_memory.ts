// Helpers of the mesh-over-Kafka-in-memory tests: monitors and applications in this process.
import { Platform, PostOffice } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector } from "../connector/mod.ts";
import { PresenceMonitor } from "../presence/mod.ts";
import type { MemoryKafka, MemoryKafkaClient } from "../internal.ts";
import { eventually } from "./_presence.ts";

export const quiet = ["-Dmonitor.bootstrap.wait=100", "-Dmonitor.alive.interval=1"];

export async function startMonitor(
  kafka: MemoryKafka,
  args: string[] = [],
): Promise<PresenceMonitor> {
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: ["-Dserver.port=0", "-Dserver.host=127.0.0.1", ...quiet, ...args],
  });
  const monitor = new PresenceMonitor(platform, { kafka: kafka.client() });
  await monitor.start();
  return monitor;
}

export interface App extends AsyncDisposable {
  platform: Platform;
  connector: KafkaConnector;
  po: PostOffice;
}

export function startApp(
  kafka: MemoryKafka,
  monitors: PresenceMonitor[],
  name: string,
  args: string[] = [],
  client: MemoryKafkaClient = kafka.client(),
): App {
  const urls = monitors.map((m) => `ws://127.0.0.1:${m.port}/ws/presence`).join(",");
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: [
      `-Dapplication.name=${name}`,
      "-Dcloud.connector=kafka",
      `-Dpresence.url=${urls}`,
      ...args,
    ],
  });
  const connector = connectToCloud(platform, { kafka: client })!;
  return {
    platform,
    connector,
    po: new PostOffice({}, platform),
    [Symbol.asyncDispose]: () => connector.stop(),
  };
}

// Both have joined and `b` has heard of `a`'s route.
export async function sees(b: App, a: App, route: string): Promise<void> {
  await Promise.all([a.connector.joined, b.connector.joined]);
  await eventually(
    () => b.connector.table.origins(route).includes(a.platform.origin),
    5000,
    `${route} of ${a.platform.name} in ${b.platform.name}'s table`,
  );
}

// A monitor and two apps, `b` knowing `a`'s `ping.pong`; disposing of it stops all three.
export async function pingPong(kafka: MemoryKafka) {
  const monitor = await startMonitor(kafka);
  const a = startApp(kafka, [monitor], "app-a");
  const b = startApp(kafka, [monitor], "app-b");
  a.platform.register("ping.pong", () => "pong");
  const stop = async () => {
    await Promise.all([a[Symbol.asyncDispose](), b[Symbol.asyncDispose]()]);
    await monitor.stop();
  };
  try {
    await sees(b, a, "ping.pong");
  } catch (e) {
    await stop();
    throw e;
  }
  return { monitor, a, b, [Symbol.asyncDispose]: stop };
}
