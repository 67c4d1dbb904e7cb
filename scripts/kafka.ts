/**
 * `deno task kafka [start|stop|status]`: the development Kafka broker.
 *
 * Environment: `KAFKA_VERSION` (default {@link DEFAULT_KAFKA_VERSION}; 3.9.x works too),
 * `KAFKA_PORT` (default 9092), `MINIMESH_CACHE` (jar cache, default `~/.cache/minimesh`).
 *
 * @module
 */
import process from "node:process";
import {
  DEFAULT_KAFKA_VERSION,
  devBroker,
  runningPid,
  startKafka,
  stopKafka,
  waitForKafka,
} from "./kafka_dev.ts";

const command = process.argv[2] ?? "start";
const b = devBroker();

switch (command) {
  case "start": {
    if (await waitForKafka(b.brokers, 1000)) {
      console.log(`A Kafka broker already answers on ${b.brokers}; nothing started.`);
      break;
    }
    const pid = await startKafka(b);
    console.log(`Kafka ${b.version} ready on ${b.brokers} (pid ${pid})`);
    console.log(`Log: ${b.logFile}`);
    console.log(`Stop it with: deno task kafka stop`);
    break;
  }
  case "stop":
    console.log(
      (await stopKafka(b))
        ? `Stopped the dev broker on ${b.brokers}`
        : `No dev broker started by minimesh runs on ${b.brokers}`,
    );
    break;
  case "status": {
    const pid = runningPid(b);
    const up = await waitForKafka(b.brokers, 1000);
    console.log(
      `${b.brokers}: ${up ? "answering" : "not answering"}` +
        (pid ? `; dev broker pid ${pid}, log ${b.logFile}` : ""),
    );
    break;
  }
  default:
    console.error(
      `Unknown command "${command}". Usage: deno task kafka [start|stop|status]` +
        ` (KAFKA_VERSION defaults to ${DEFAULT_KAFKA_VERSION})`,
    );
    process.exit(2);
}
