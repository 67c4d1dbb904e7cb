/**
 * `deno task demo`: the service-mesh guide as one command.
 *
 * Starts what is not already running: the dev Kafka broker (127.0.0.1:9092), two presence
 * monitors (8080 and 8081), lambda-example (8085) and rest-example (8083), both with
 * `-Dcloud.connector=kafka -Dmandatory.health.dependencies=cloud.connector.health`. Shows their
 * logs, walks the guide once (the PoJo through the mesh, the monitor's `/info`, both `/health`),
 * prints the URLs to open, and runs until Ctrl-C, which stops exactly what it started.
 * `--exit` stops after the walkthrough.
 *
 * `--kafka <kafka.properties>` (or the environment variable `CLOUD_CLIENT_PROPERTIES`) runs the
 * demo on an existing cluster instead: no dev broker is started, and every process reads its
 * Kafka settings (brokers, SASL, TLS) from that file.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { devBroker, startKafka, stopKafka, waitForKafka } from "./kafka_dev.ts";

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const exitAfter = process.argv.includes("--exit");
const kafkaAt = process.argv.indexOf("--kafka");
const kafkaFile = kafkaAt >= 0 ? process.argv[kafkaAt + 1] : process.env.CLOUD_CLIENT_PROPERTIES;
if (kafkaAt >= 0 && !kafkaFile) {
  console.error("Usage: deno task demo [--exit] [--kafka <kafka.properties>]");
  process.exit(2);
}
const KAFKA = kafkaFile
  ? [`-Dcloud.client.properties=${kafkaFile.includes(":") ? kafkaFile : `file:${kafkaFile}`}`]
  : [];
const MESH = [
  "-Dcloud.connector=kafka",
  "-Dmandatory.health.dependencies=cloud.connector.health",
  ...KAFKA,
];
const started: { name: string; proc: ChildProcess }[] = [];
const broker = devBroker();
let startedKafka = false;

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

function launch(name: string, file: string, args: string[]): void {
  const proc = spawn(process.execPath, ["run", "-A", root(file), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", KAFKAJS_NO_PARTITIONER_WARNING: "1" },
  });
  const show = (d: Uint8Array) => {
    for (const line of new TextDecoder().decode(d).split("\n")) {
      if (
        line.trim() && !line.includes("TimeoutNegativeWarning") && !/^Timeout duration/.test(line)
      ) {
        console.log(`[${name}] ${line}`);
      }
    }
  };
  proc.stdout!.on("data", show);
  proc.stderr!.on("data", show);
  proc.on("exit", (code, signal) => {
    if (!stopping) console.log(`[${name}] exited (${code ?? signal})`);
  });
  started.push({ name, proc });
}

let stopping = false;
async function stopAll(code: number): Promise<never> {
  stopping = true;
  console.log("\nStopping what the demo started ...");
  for (const { proc } of [...started].reverse()) proc.kill("SIGTERM");
  await Promise.all(
    started.map(({ proc }) =>
      proc.exitCode !== null ? undefined : new Promise((r) => proc.on("exit", r))
    ),
  );
  if (startedKafka) await stopKafka(broker);
  process.exit(code);
}
process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.error(`Gave up waiting for ${what} after ${ms / 1000} s`);
  await stopAll(1);
}

if (kafkaFile) {
  console.log(`Using the Kafka cluster of ${kafkaFile}; no dev broker started`);
} else if (await waitForKafka(broker.brokers, 1000)) {
  console.log(`Kafka already answers on ${broker.brokers}`);
} else {
  console.log(`Starting the dev Kafka broker (${broker.version}) on ${broker.brokers} ...`);
  await startKafka(broker, { progress: console.log });
  startedKafka = true;
  console.log(`Kafka ready; log: ${broker.logFile}`);
}
for (const port of [8080, 8081]) {
  if (await answers(`http://127.0.0.1:${port}/livenessprobe`)) {
    console.log(`Something already answers on port ${port}; not starting a monitor there`);
  } else launch(`monitor-${port}`, "presence/main.ts", [`-Dserver.port=${port}`, ...KAFKA]);
}
await until("a presence monitor", () => answers("http://127.0.0.1:8080/livenessprobe"), 60_000);
console.log("Dashboard: http://127.0.0.1:8080/ (open it to watch the examples join)");
launch("lambda-example", "examples/lambda_example/main.ts", MESH);
launch("rest-example", "examples/rest_example/main.ts", MESH);

const pojoUrl = "http://127.0.0.1:8083/api/pojo/mesh/1";
await until("rest-example to reach hello.pojo through the mesh", async () => {
  try {
    return (await fetch(pojoUrl, { signal: AbortSignal.timeout(2000) })).status === 200;
  } catch {
    return false;
  }
}, 90_000);

const show = async (title: string, url: string) => {
  const res = await fetch(url);
  console.log(`\n=== ${title}: GET ${url} -> ${res.status}\n${await res.text()}`);
};
await show("The PoJo, through the mesh", pojoUrl);
await show("Presence monitor", "http://127.0.0.1:8080/info");
await show("Presence monitor health", "http://127.0.0.1:8080/health");
await show("rest-example health", "http://127.0.0.1:8083/health");
await show("lambda-example health", "http://127.0.0.1:8085/health");
console.log(`
Open these:
  http://127.0.0.1:8080/                          the live dashboard: apps, routes, rates, joins, leaves
  ${pojoUrl}             the guide's PoJo, from lambda-example through Kafka
  http://127.0.0.1:8080/info                      presence monitor: connections, topics, leases
  http://127.0.0.1:8080/health                    presence monitor: Kafka loopback
  http://127.0.0.1:8083/health                    rest-example health (loopback through its partition)
  http://127.0.0.1:8083/info/routes               rest-example's distributed routing table
  http://127.0.0.1:8085/info                      lambda-example
Press Ctrl-C to stop everything the demo started.`);
if (exitAfter) await stopAll(0);
