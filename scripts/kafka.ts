/**
 * `deno task kafka [start|stop|status] [--brokers N] [--security sasl_ssl]`: the development
 * Kafka. By default one plaintext broker on 127.0.0.1:9092; `--brokers 3` runs a 3-node KRaft
 * cluster (clients on 9092-9094); `--security sasl_ssl` serves TLS with a CA made on the fly and
 * SCRAM users, and prints (and writes) the `kafka.properties` a client needs.
 *
 * Environment: `KAFKA_VERSION` (default {@link DEFAULT_KAFKA_VERSION}; 3.9.x works too),
 * `KAFKA_PORT` (the first client port, default 9092), `MINIMESH_CACHE` (jar cache, default
 * `~/.cache/minimesh`).
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  clientProperties,
  clusterAnswers,
  DEFAULT_KAFKA_VERSION,
  devBroker,
  runningPid,
  startKafka,
  stopKafka,
} from "./kafka_dev.ts";
import type { DevSecurity } from "./kafka_dev.ts";

const USAGE =
  "Usage: deno task kafka [start|stop|status] [--brokers 1|3] [--security none|sasl_ssl]" +
  ` (KAFKA_VERSION defaults to ${DEFAULT_KAFKA_VERSION})`;

let parsed;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      brokers: { type: "string", default: "1" },
      security: { type: "string", default: "none" },
    },
  });
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
const command = parsed.positionals[0] ?? "start";
const nodes = Number(parsed.values.brokers);
const security = parsed.values.security as DevSecurity;
if (!["none", "sasl_ssl"].includes(security) || !(nodes >= 1 && nodes <= 5)) {
  console.error(USAGE);
  process.exit(2);
}
const b = devBroker(undefined, undefined, { nodes, security });

switch (command) {
  case "start": {
    if (runningPid(b) !== undefined || await clusterAnswers(b, 1000)) {
      console.log(`A Kafka broker already answers on ${b.brokers}; nothing started.`);
      break;
    }
    console.log(
      `Starting Kafka ${b.version}: ${nodes} node(s) on ${b.brokers}` +
        (security === "sasl_ssl" ? ", SASL_SSL" : "") + " ...",
    );
    const pid = await startKafka(b, { progress: console.log });
    console.log(`Kafka ${b.version} ready on ${b.brokers} (first node pid ${pid})`);
    console.log(`Log: ${b.logFile}`);
    const props = join(b.dataDir, "kafka.properties");
    writeFileSync(props, clientProperties(b));
    console.log(`A client's kafka.properties (written to ${props}):\n`);
    console.log(clientProperties(b));
    console.log(`Stop it with: deno task kafka stop`);
    break;
  }
  case "stop": {
    // Whatever was started on these ports: a single broker or a cluster of up to five.
    const any = devBroker(undefined, undefined, { nodes: 5 });
    console.log(
      (await stopKafka(any))
        ? `Stopped the dev Kafka on ${b.brokers.split(",")[0]} and up`
        : `No dev broker started by minimesh runs on ${b.brokers}`,
    );
    break;
  }
  case "status": {
    const pid = runningPid(b);
    const up = await clusterAnswers(b, 1000);
    console.log(
      `${b.brokers}: ${up ? "answering" : "not answering"}` +
        (pid ? `; dev broker pid ${pid}, log ${b.logFile}` : ""),
    );
    break;
  }
  default:
    console.error(`Unknown command "${command}". ${USAGE}`);
    process.exit(2);
}
