/**
 * `deno task test`: runs the whole suite against a real Kafka broker.
 *
 * Uses the cluster in `KAFKA_BROKERS` when set; otherwise starts the dev broker on
 * 127.0.0.1:9092 unless one already answers there, and stops only what it started. Extra
 * arguments go to `deno test` (for example a single test file). Ends with a plain
 * `N passed, N failed, N skipped` line counting every test case (Deno's own summary counts
 * only top-level tests).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { devBroker, startKafka, stopKafka, waitForKafka } from "./kafka_dev.ts";

/** The library's folders, whose doc examples run as tests too. */
const LIBRARY = ["mod.ts", "bus/", "runtime/", "kafka/", "connector/", "presence/", "actuator/"];

const given = process.env.KAFKA_BROKERS;
const broker = devBroker();
const brokers = given ?? broker.brokers;
let started = false;

if (!(await waitForKafka(brokers, given ? 15_000 : 1_000))) {
  if (given) {
    console.error(`KAFKA_BROKERS=${given} does not answer; not starting a dev broker.`);
    process.exit(1);
  }
  console.log(`No Kafka on ${brokers}: starting the dev broker (Kafka ${broker.version}) ...`);
  await startKafka(broker, { progress: console.log });
  started = true;
  console.log(`Kafka ${broker.version} ready on ${brokers}; log: ${broker.logFile}`);
}

const reportDir = mkdtempSync(join(tmpdir(), "minimesh-junit-"));
const junit = join(reportDir, "report.xml");
const args = process.argv.slice(2);
const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    // Without arguments: the test files, plus every @example in the library's doc comments.
    [
      "test",
      "-A",
      `--junit-path=${junit}`,
      ...(args.length ? args : ["--doc", ...LIBRARY, "tests/"]),
    ],
    {
      stdio: "inherit",
      env: { ...process.env, KAFKA_BROKERS: brokers, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    },
  );
  child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

if (started) await stopKafka(broker);

// Count leaf test cases from the JUnit report: a `describe` appears there as a test case too,
// and is left out when another case is named "<its name> > ...".
let passed = 0, failed = 0, skipped = 0;
try {
  const xml = readFileSync(junit, "utf8");
  const cases = [
    ...xml.matchAll(/<testcase\b[^>]*?name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
  ]
    .map((m) => ({ name: m[1], inner: m[3] ?? "" }));
  const parents = new Set<string>();
  for (const c of cases) {
    const parts = c.name.split(" &gt; ");
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join(" &gt; "));
  }
  for (const c of cases) {
    if (parents.has(c.name)) continue;
    if (/<failure\b|<error\b/.test(c.inner)) failed++;
    else if (/<skipped\b/.test(c.inner)) skipped++;
    else passed++;
  }
} catch {
  failed = Math.max(failed, code === 0 ? 0 : 1);
}
rmSync(reportDir, { recursive: true, force: true });
if (code !== 0 && failed === 0) failed = 1; // a crash outside any test still fails the run
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);
