/**
 * `deno task test`: runs the whole suite against a real Kafka broker.
 *
 * Without arguments it runs in two passes: everything on the default Kafka client, then the
 * tests that cross the broker on the other one (`kafka.client`). Uses the cluster in
 * `KAFKA_BROKERS` when set; otherwise starts the dev broker on
 * 127.0.0.1:9092 unless one already answers there, and stops only what it started. Extra
 * arguments go to `deno test` (for example a single test file). Ends with a plain
 * `N passed, N failed, N skipped` line counting every test case (Deno's own summary counts
 * only top-level tests).
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { devBroker, startKafka, stopKafka, waitForKafka } from "./kafka_dev.ts";
import { CLIENT_LIBRARIES, DEFAULT_CLIENT } from "../kafka/properties.ts";

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

// Without arguments: the test files, plus every @example in the library's doc comments, on the
// default Kafka client; then everything that crosses the broker again on the other client
// (`kafka.client`), so that both stay whole. The tests that name their clients themselves (each
// link's own, the mixed mesh) run in the first pass only.
const LINK_TESTS = ["kafka_link_test.ts", "platformatic_link_test.ts", "mixed_clients_test.ts"];
const args = process.argv.slice(2);
const other = CLIENT_LIBRARIES.find((c) => c !== DEFAULT_CLIENT)!;
const passes: { client?: string; files: string[] }[] = args.length ? [{ files: args }] : [
  { files: ["--doc", ...LIBRARY, "tests/"] },
  {
    client: other,
    files: readdirSync("tests/broker").filter((f) => f.endsWith("_test.ts"))
      .filter((f) => !LINK_TESTS.includes(f)).map((f) => `tests/broker/${f}`),
  },
];

let passed = 0, failed = 0, skipped = 0, code = 0;
for (const pass of passes) {
  if (pass.client !== undefined) {
    console.log(`\nThe tests that cross the broker again, on kafka.client=${pass.client}:\n`);
  }
  const result = await run(pass.files, pass.client);
  passed += result.passed;
  failed += result.failed;
  skipped += result.skipped;
  code ||= result.code;
}

if (started) await stopKafka(broker);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);

// One `deno test` run; counts its leaf test cases.
async function run(files: string[], client?: string) {
  const reportDir = mkdtempSync(join(tmpdir(), "minimesh-junit-"));
  const junit = join(reportDir, "report.xml");
  const env: Record<string, string | undefined> = {
    ...process.env,
    KAFKA_BROKERS: brokers,
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
  };
  if (client !== undefined) env.KAFKA_CLIENT = client;
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ["test", "-A", `--junit-path=${junit}`, ...files], {
      stdio: "inherit",
      env,
    });
    child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  const counts = countCases(junit, code);
  rmSync(reportDir, { recursive: true, force: true });
  return { code, ...counts };
}

// Counts leaf test cases from the JUnit report: a `describe` appears there as a test case too,
// and is left out when another case is named "<its name> > ...".
function countCases(junit: string, code: number) {
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
  if (code !== 0 && failed === 0) failed = 1; // a crash outside any test still fails the run
  return { passed, failed, skipped };
}
