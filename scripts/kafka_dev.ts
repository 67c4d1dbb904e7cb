/**
 * A real Apache Kafka for development and tests (KRaft, 127.0.0.1): by default one plaintext
 * broker, as the guide's standalone dev server; or a cluster of N nodes (ports `port` to
 * `port+N-1`), and with `security: "sasl_ssl"` one that looks like a managed service: TLS with a
 * CA and broker certificates made on the fly (openssl), and SCRAM / PLAIN users.
 *
 * The broker jars come from Maven Central once per machine and per version, into a cache outside
 * the work tree; each start wipes and re-formats a temporary log folder, as the guide's
 * standalone dev server does. Only the processes this module started are ever stopped.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";
import type { KafkaConfig } from "kafkajs";
import { patchKafkajs } from "../kafka/kafkajs/_patch.ts";

/** The broker version used when `KAFKA_VERSION` is not set. */
export const DEFAULT_KAFKA_VERSION = "4.1.1";

/** `none` (plaintext) or `sasl_ssl` (TLS, SCRAM-SHA-256/512 and PLAIN users). */
export type DevSecurity = "none" | "sasl_ssl";

/** One node of a dev cluster: broker and controller in one process. */
export interface DevNode {
  /** `node.id`, from 1. */
  id: number;
  /** The address it listens on: 127.0.0.1, or its host's in a multi-host test bed. */
  host: string;
  /** The network namespace it runs in (a test bed's host), or undefined for this one. */
  netns?: string;
  /** The client port. */
  port: number;
  /** The controller (KRaft quorum) port. */
  controllerPort: number;
  dataDir: string;
  logFile: string;
  pidFile: string;
}

/** Where one dev cluster lives: its version, ports, folders and files. */
export interface DevBroker {
  version: string;
  /** The first node's client port. */
  port: number;
  /** `host:port,...` for clients. */
  brokers: string;
  /** The nodes (one by default). */
  nodes: DevNode[];
  security: DevSecurity;
  /** `min.insync.replicas` (1 unless asked). */
  minIsr: number;
  libDir: string;
  /** The cluster's folder (the first node's too, for a single node). */
  dataDir: string;
  /** The first node's log. */
  logFile: string;
  /** The first node's pid file. */
  pidFile: string;
}

/** The SASL users of a `sasl_ssl` dev cluster (user name → password). */
export const DEV_USERS = { admin: "admin-secret", alice: "alice-secret" } as const;

/** Describes the dev cluster for `version` on `port` without touching anything. */
export function devBroker(
  version = process.env.KAFKA_VERSION || DEFAULT_KAFKA_VERSION,
  port = Number(process.env.KAFKA_PORT || 9092),
  options: {
    nodes?: number;
    security?: DevSecurity;
    /** One per node: the address it listens on and the network namespace it runs in. */
    hosts?: { addr: string; netns: string }[];
    minIsr?: number;
  } = {},
): DevBroker {
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    throw new RangeError(`KAFKA_VERSION must look like 4.1.1, got "${version}"`);
  }
  const count = options.hosts?.length ?? options.nodes ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 5) {
    throw new RangeError(`a dev cluster has 1 to 5 nodes, not ${count}`);
  }
  const cache = process.env.MINIMESH_CACHE || join(homedir(), ".cache", "minimesh");
  const dataDir = join(tmpdir(), `minimesh-kafka-${port}`);
  const nodes: DevNode[] = [];
  for (let i = 0; i < count; i++) {
    const dir = count === 1 ? dataDir : join(dataDir, `node${i + 1}`);
    nodes.push({
      id: i + 1,
      host: options.hosts?.[i].addr ?? "127.0.0.1",
      netns: options.hosts?.[i].netns,
      port: port + i,
      // One node keeps the guide's 9092/9093; N nodes take N client ports, then N controllers.
      controllerPort: port + count + i,
      dataDir: dir,
      logFile: join(dir, "server.log"),
      pidFile: join(tmpdir(), `minimesh-kafka-${port + i}.pid`),
    });
  }
  return {
    version,
    port,
    brokers: nodes.map((n) => `${n.host}:${n.port}`).join(","),
    nodes,
    security: options.security ?? "none",
    minIsr: options.minIsr ?? 1,
    libDir: join(cache, "kafka", version, "libs"),
    dataDir,
    logFile: nodes[0].logFile,
    pidFile: nodes[0].pidFile,
  };
}

function isV3(version: string): boolean {
  return version.startsWith("3.");
}

function pom(version: string): string {
  // The broker's POM leaves the logging backend out; without one it logs nothing.
  const logging = isV3(version)
    ? [["org.slf4j", "slf4j-reload4j", "1.7.36"], ["ch.qos.reload4j", "reload4j", "1.2.25"]]
    : [
      ["org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"],
      ["org.apache.logging.log4j", "log4j-api", "2.24.3"],
      ["org.apache.logging.log4j", "log4j-core", "2.24.3"],
    ];
  const deps = [["org.apache.kafka", "kafka_2.13", version], ...logging]
    .map(([g, a, v]) =>
      `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`
    ).join("\n    ");
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.minimesh</groupId>
  <artifactId>kafka-dev-${version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    ${deps}
  </dependencies>
</project>
`;
}

/** Where start-up steps are reported (the CLI and the demo print them; tests stay quiet). */
export type Progress = (line: string) => void;

/**
 * Throws, saying how to get it, unless a Java of 17 or later is on PATH (Kafka 4 needs 17).
 */
export function checkJava(): void {
  const run = spawnSync("java", ["-version"], { encoding: "utf8" });
  const how = "install a JDK or JRE 17+ (Debian: apt-get install openjdk-17-jre-headless; " +
    "https://adoptium.net), or point the tests at a running cluster with KAFKA_BROKERS=host:port";
  if (run.error !== undefined) {
    throw new Error(`The dev broker needs Java 17 or later (java not found on PATH): ${how}`);
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${run.stderr}${run.stdout}`);
  const major = m === null ? 0 : Number(m[1]) === 1 ? Number(m[2]) : Number(m[1]);
  if (major < 17) {
    throw new Error(`The dev broker needs Java 17 or later (this is Java ${major || "?"}): ${how}`);
  }
}

// Runs mvn with `args`, handing each line of its output to `line`; rejects on a non-zero exit.
function mvn(args: string[], line: (text: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("mvn", ["-B", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let partial = "";
    const onData = (chunk: { toString(): string }) => {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop()!;
      for (const p of parts) line(p);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (e: Error & { code?: string }) =>
      reject(
        e.code === "ENOENT"
          ? new Error(
            "Maven is needed once, to fetch the Kafka jars (mvn not found on PATH): install it " +
              "(Debian: apt-get install maven; https://maven.apache.org), or point the tests at " +
              "a running cluster with KAFKA_BROKERS=host:port",
          )
          : e,
      ));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

const SIZE = /\((\d+(?:\.\d+)?) (B|kB|KB|MB|GB) at /;
const UNIT: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 };

/**
 * Fetches the broker's runtime jars from Maven Central unless they are cached already,
 * reporting the download as it goes (jars fetched of those the broker needs, and megabytes).
 */
export async function ensureJars(b: DevBroker, progress: Progress = console.log): Promise<void> {
  const done = join(b.libDir, ".complete");
  if (existsSync(done)) return;
  const work = join(b.libDir, "..");
  rmSync(b.libDir, { recursive: true, force: true });
  mkdirSync(b.libDir, { recursive: true });
  const pomFile = join(work, "pom.xml");
  writeFileSync(pomFile, pom(b.version));
  const plugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1";
  progress(`Fetching Apache Kafka ${b.version} from Maven Central into ${b.libDir}`);
  const fail = (e: Error) => {
    if (/mvn not found/.test(e.message)) throw e;
    throw new Error(
      `mvn could not fetch org.apache.kafka:kafka_2.13:${b.version} (${e.message})`,
      { cause: e },
    );
  };
  // First the list of jars (only their poms are fetched for it), so that progress has a total;
  // what it fetches is counted too (on a fresh machine, Maven's own plugins come first).
  const list = join(work, "jars.txt");
  let fetched = 0, said = Date.now();
  await mvn([
    "-f",
    pomFile,
    `${plugin}:tree`,
    "-Dscope=runtime",
    `-DoutputFile=${list}`,
  ], (text) => {
    if (!/^(\[INFO\] )?Downloaded from /.test(text)) return;
    fetched++;
    if (Date.now() - said >= 2000) {
      said = Date.now();
      progress(`  resolving the jars: ${fetched} files fetched (Maven's plugins, poms)`);
    }
  }).catch(fail);
  const total = readFileSync(list, "utf8").split("\n").filter((l) => /:jar:/.test(l)).length;
  progress(`  ${total} jars to fetch`);
  let jars = 0, bytes = 0, reported = 0;
  await mvn([
    "-f",
    pomFile,
    `${plugin}:copy-dependencies`,
    "-DincludeScope=runtime",
    `-DoutputDirectory=${b.libDir}`,
  ], (text) => {
    if (!/^(\[INFO\] )?Downloaded from /.test(text) || !/\.jar /.test(text)) return;
    const m = SIZE.exec(text);
    jars++;
    bytes += m ? Number(m[1]) * UNIT[m[2]] : 0;
    // At most one line a second, and the last one.
    if (Date.now() - reported >= 1000 || jars === total) {
      reported = Date.now();
      progress(`  jars ${jars} / ${total}, ${(bytes / 1e6).toFixed(1)} MB`);
    }
  }).catch(fail);
  progress(`  ${total} jars in place (${(bytes / 1e6).toFixed(1)} MB fetched)`);
  writeFileSync(done, new Date().toISOString());
}

function clusterId(): string {
  for (;;) {
    const id = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
      .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    if (!id.startsWith("-")) return id;
  }
}

function serverProperties(b: DevBroker, n: DevNode): string {
  const replicas = Math.min(3, b.nodes.length);
  const secure = b.security === "sasl_ssl";
  const listener = secure ? "SASL_SSL" : "PLAINTEXT";
  const props: Record<string, string | number> = {
    "process.roles": "broker,controller",
    "node.id": n.id,
    "controller.quorum.voters": b.nodes.map((o) => `${o.id}@${o.host}:${o.controllerPort}`)
      .join(","),
    "listeners": `${listener}://${n.host}:${n.port},CONTROLLER://${n.host}:${n.controllerPort}`,
    "advertised.listeners": `${listener}://${n.host}:${n.port}`,
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": `CONTROLLER:PLAINTEXT,${listener}:${listener}`,
    "inter.broker.listener.name": listener,
    "log.dirs": join(n.dataDir, "logs"),
    "num.partitions": 1,
    "offsets.topic.replication.factor": replicas,
    "transaction.state.log.replication.factor": replicas,
    "transaction.state.log.min.isr": 1,
    "default.replication.factor": replicas,
    "min.insync.replicas": b.minIsr,
    "group.initial.rebalance.delay.ms": 0,
    // More than one node: group coordinators spread over the brokers, as in production.
    "offsets.topic.num.partitions": b.nodes.length === 1 ? 1 : 6,
    "transaction.state.log.num.partitions": 1,
    "log.cleaner.dedupe.buffer.size": 2097152,
    "auto.create.topics.enable": "true",
    // A broker that dies stays leader, and in every partition's in-sync replicas (so that no
    // consumer sees new records: the high watermark waits for it), until the controller fences
    // it: 9 s after its last heartbeat by default, which stalls the whole mesh, not only the
    // partitions it led. 3 s (heartbeats every 0.5 s) keeps the stall under the usual 5 s
    // request timeout; docs/reliability.md says what a production cluster should use.
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
    // Connections not yet accepted that a broker's socket holds (50 by default): a fleet joining
    // at once opens a thousand, and the ones over it wait for TCP to try again (1 s, 3 s, ...).
    "socket.listen.backlog.size": 1024,
  };
  if (!isV3(b.version)) {
    props["share.coordinator.state.topic.replication.factor"] = replicas;
    props["share.coordinator.state.topic.min.isr"] = 1;
  }
  if (secure) {
    const tls = tlsFiles(b);
    const scram = (user: string) =>
      `org.apache.kafka.common.security.scram.ScramLoginModule required username="${user}" ` +
      `password="${DEV_USERS.admin}";`;
    const plainUsers = Object.entries(DEV_USERS).map(([u, p]) => `user_${u}="${p}"`).join(" ");
    Object.assign(props, {
      "ssl.keystore.type": "PEM",
      "ssl.keystore.location": tls.combinedPem,
      "ssl.truststore.type": "PEM",
      "ssl.truststore.location": tls.caPem,
      "ssl.client.auth": "none",
      "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
      "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
      "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram("admin"),
      "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram("admin"),
      "listener.name.sasl_ssl.plain.sasl.jaas.config":
        `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" ` +
        `password="${DEV_USERS.admin}" ${plainUsers};`,
    });
  }
  return Object.entries(props).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

/** The CA and broker certificate of a `sasl_ssl` dev cluster (PEM files in its folder). */
export function tlsFiles(b: DevBroker): TestCertificates & { dir: string } {
  const dir = join(b.dataDir, "tls");
  return { dir, ...certificatePaths(dir) };
}

/** What {@link makeTestCertificates} writes (PEM files). */
export interface TestCertificates {
  /** The CA's certificate: what clients trust. */
  caPem: string;
  /** The server's certificate, signed by the CA, for 127.0.0.1 and localhost. */
  certPem: string;
  /** The server's private key (PKCS#8, unencrypted). */
  keyPem: string;
  /** Key and certificate in one file (Kafka's PEM key store). */
  combinedPem: string;
}

function certificatePaths(dir: string): TestCertificates {
  return {
    caPem: join(dir, "ca.pem"),
    certPem: join(dir, "broker.crt"),
    keyPem: join(dir, "broker.key"),
    combinedPem: join(dir, "broker.pem"),
  };
}

/**
 * Makes a CA and a server certificate for 127.0.0.1 and localhost in `dir` with openssl, valid
 * two days: for the dev cluster's TLS and for tests of TLS servers.
 */
export function makeTestCertificates(dir: string): TestCertificates {
  mkdirSync(dir, { recursive: true });
  const out = certificatePaths(dir);
  const run = (...args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) {
      throw new Error(`openssl ${args[0]} failed (exit ${r.status}): ${r.stderr || r.error}`);
    }
  };
  run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=minimesh dev CA",
    "-keyout",
    "ca.key",
    "-out",
    out.caPem,
  );
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", out.keyPem);
  run("req", "-new", "-key", out.keyPem, "-subj", "/CN=localhost", "-out", "broker.csr");
  run(
    "x509",
    "-req",
    "-in",
    "broker.csr",
    "-CA",
    out.caPem,
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "san.ext",
    "-out",
    out.certPem,
  );
  writeFileSync(
    out.combinedPem,
    readFileSync(out.keyPem, "utf8") + readFileSync(out.certPem, "utf8"),
  );
  return out;
}

/**
 * The `kafka.properties` a client of this dev cluster needs, as a Java Mercury application
 * would have it (user alice, SCRAM-SHA-512 for `sasl_ssl`).
 */
export function clientProperties(b: DevBroker, user = "alice", password?: string): string {
  const lines = [`bootstrap.servers=${b.brokers}`];
  if (b.security === "sasl_ssl") {
    const secret = password ?? DEV_USERS[user as keyof typeof DEV_USERS] ?? "";
    lines.push(
      "security.protocol=SASL_SSL",
      "sasl.mechanism=SCRAM-SHA-512",
      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required " +
        `username="${user}" password="${secret}";`,
      "ssl.truststore.type=PEM",
      `ssl.truststore.location=${tlsFiles(b).caPem}`,
    );
  }
  return lines.join("\n") + "\n";
}

// kafkajs options that reach this dev cluster (for the readiness probe).
function probeSecurity(b: DevBroker): Partial<KafkaConfig> {
  if (b.security !== "sasl_ssl") return {};
  const ca = tlsFiles(b).caPem;
  return {
    // Before its CA exists, whatever answers on the port is someone else's: no need to trust it.
    ssl: existsSync(ca) ? { ca: [readFileSync(ca, "utf8")] } : { rejectUnauthorized: false },
    sasl: { mechanism: "scram-sha-512", username: "admin", password: DEV_USERS.admin },
  };
}

function loggingConfig(b: DevBroker, n: DevNode): { file: string; flag: string } {
  if (isV3(b.version)) {
    const file = join(n.dataDir, "log4j.properties");
    writeFileSync(
      file,
      "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n" +
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n" +
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n" +
        "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n",
    );
    return { file, flag: `-Dlog4j.configuration=file:${file}` };
  }
  const file = join(n.dataDir, "log4j2.properties");
  writeFileSync(
    file,
    "status=warn\nappender.console.type=Console\nappender.console.name=STDOUT\n" +
      "appender.console.layout.type=PatternLayout\nappender.console.layout.pattern=[%d] %p %m (%c)%n\n" +
      "rootLogger.level=info\nrootLogger.appenderRef.stdout.ref=STDOUT\n",
  );
  return { file, flag: `-Dlog4j2.configurationFile=${file}` };
}

/** True when `pid` is alive and is a Kafka broker (so a reused pid is never signalled). */
function isBrokerProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("kafka.Kafka");
  } catch {
    return false;
  }
}

/** The pid of the first node this module started on `b.port`, if it still runs. */
export function runningPid(b: DevBroker): number | undefined {
  return nodePid(b.nodes[0]);
}

/** The pids of the cluster's running nodes. */
export function runningPids(b: DevBroker): number[] {
  return b.nodes.flatMap((n) => nodePid(n) ?? []);
}

/** The pid of node `n`, if it runs. */
export function nodePid(n: DevNode): number | undefined {
  if (!existsSync(n.pidFile)) return undefined;
  const pid = Number(readFileSync(n.pidFile, "utf8").trim());
  return Number.isInteger(pid) && isBrokerProcess(pid) ? pid : undefined;
}

/**
 * Resolves true once an admin call (describe cluster) succeeds against `brokers` and shows
 * `nodes` brokers, false when `timeoutMs` passes first. Stops early if `alive()` turns false.
 */
export async function waitForKafka(
  brokers: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
  options: { nodes?: number; security?: Partial<KafkaConfig> } = {},
): Promise<boolean> {
  // The library's kafkajs patches: unpatched, each idle connection re-arms a negative timer
  // (and Node warns about it).
  await patchKafkajs();
  const kafka = new Kafka({
    clientId: "minimesh-dev-probe",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
    ...options.security,
  });
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && alive()) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length >= (options.nodes ?? 1)) return true;
    } catch {
      // not yet
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/** Whether the dev cluster `b` answers (with its own security settings). */
export function clusterAnswers(b: DevBroker, timeoutMs: number): Promise<boolean> {
  return waitForKafka(b.brokers, timeoutMs, () => true, {
    nodes: b.nodes.length,
    security: probeSecurity(b),
  });
}

function format(b: DevBroker, n: DevNode, props: string, flag: string, id: string): void {
  const scram = b.security === "sasl_ssl"
    ? Object.entries(DEV_USERS).flatMap(([name, password]) =>
      ["SCRAM-SHA-256", "SCRAM-SHA-512"].flatMap((m) => [
        "--add-scram",
        `${m}=[name=${name},password=${password}]`,
      ])
    )
    : [];
  const fmt = spawnSync("java", [
    flag,
    "-cp",
    `${b.libDir}/*`,
    "kafka.tools.StorageTool",
    "format",
    "-t",
    id,
    "-c",
    props,
    "--ignore-formatted",
    ...scram,
  ], { encoding: "utf8" });
  if (fmt.status !== 0) {
    throw new Error(
      `kafka storage format of node ${n.id} failed (exit ${fmt.status}): ` +
        (fmt.stderr || fmt.stdout),
    );
  }
}

/**
 * Starts one node of the cluster (its storage formatted first unless `keepData` finds it so);
 * returns its pid without waiting for it to answer.
 */
export function startNode(
  b: DevBroker,
  n: DevNode,
  options: { keepData?: boolean; clusterId?: string } = {},
): number {
  const existing = nodePid(n);
  if (existing) throw new Error(`a dev broker already runs on port ${n.port} (pid ${existing})`);
  // Only its log store: one node's folder is the cluster's, which holds the certificates.
  if (!options.keepData) rmSync(join(n.dataDir, "logs"), { recursive: true, force: true });
  mkdirSync(join(n.dataDir, "logs"), { recursive: true });
  const props = join(n.dataDir, "server.properties");
  writeFileSync(props, serverProperties(b, n));
  const logging = loggingConfig(b, n);
  // A kept data folder is formatted already, with its own cluster id.
  if (!options.keepData || !existsSync(join(n.dataDir, "logs", "meta.properties"))) {
    format(b, n, props, logging.flag, options.clusterId ?? clusterId());
  }
  const out = openSync(n.logFile, "a");
  // In a test bed's host: `ip netns exec` enters the namespace and execs java (the same pid).
  const [command, ...prefix] = n.netns ? ["ip", "netns", "exec", n.netns, "java"] : ["java"];
  const child = spawn(command, [
    ...prefix,
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    logging.flag,
    "-cp",
    `${b.libDir}/*`,
    "kafka.Kafka",
    props,
  ], { detached: true, stdio: ["ignore", out, out] });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start java for the Kafka broker");
  child.unref();
  writeFileSync(n.pidFile, String(pid));
  return pid;
}

/**
 * Starts the dev cluster (fetching jars first if needed) and resolves once every node answers.
 * It starts empty, unless `keepData` restarts it on the data it had (after
 * {@link killKafka}, say). Returns the first node's pid.
 */
export async function startKafka(
  b: DevBroker = devBroker(),
  options: { keepData?: boolean; progress?: Progress } = {},
): Promise<number> {
  const existing = b.nodes.map(nodePid).find((p) => p !== undefined);
  if (existing) throw new Error(`a dev broker already runs on port ${b.port} (pid ${existing})`);
  const say = options.progress ?? (() => {});
  const t0 = Date.now();
  checkJava();
  await ensureJars(b, options.progress);
  if (!options.keepData) rmSync(b.dataDir, { recursive: true, force: true });
  mkdirSync(b.dataDir, { recursive: true });
  // A CA, and one certificate for every node (127.0.0.1 and localhost): tlsFiles names them.
  if (b.security === "sasl_ssl" && !existsSync(tlsFiles(b).combinedPem)) {
    makeTestCertificates(tlsFiles(b).dir);
  }
  const id = clusterId();
  const pids = b.nodes.map((n) => {
    say(`Formatting and starting node ${n.id} (port ${n.port}) ...`);
    return startNode(b, n, { keepData: options.keepData, clusterId: id });
  });
  say(`Waiting for ${b.nodes.length === 1 ? "the broker" : "the brokers"} to answer ...`);
  const alive = () => pids.every(isBrokerProcess);
  const ok = await waitForKafka(b.brokers, 90_000, alive, {
    nodes: b.nodes.length,
    security: probeSecurity(b),
  });
  if (!ok) {
    // A node that exited says why in its own log; else the first node's tells what it waits for.
    const gone = b.nodes.findIndex((_, i) => !isBrokerProcess(pids[i]));
    await stopKafka(b);
    const n = b.nodes[Math.max(0, gone)];
    const tail = existsSync(n.logFile)
      ? readFileSync(n.logFile, "utf8").split("\n").slice(-30).join("\n")
      : "(no log)";
    const why = gone >= 0
      ? `node ${n.id} (pid ${pids[gone]}) exited while starting`
      : "not every node answered within 90 s";
    throw new Error(
      `Kafka ${b.version} did not become ready on ${b.brokers}: ${why}; its log's tail:\n${tail}`,
    );
  }
  say(`Ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return pids[0];
}

/** Kills the cluster this module started on `b.port` at once (SIGKILL), as a crash would. */
export async function killKafka(b: DevBroker = devBroker()): Promise<boolean> {
  const killed = await Promise.all(b.nodes.map((n) => endNode(n, "SIGKILL")));
  return killed.some(Boolean);
}

/** Stops the cluster this module started on `b.port` (SIGTERM, then SIGKILL after 20 s). */
export async function stopKafka(b: DevBroker = devBroker()): Promise<boolean> {
  const stopped = await Promise.all(b.nodes.map((n) => endNode(n, "SIGTERM")));
  return stopped.some(Boolean);
}

/** Ends one node (SIGKILL as a crash, or SIGTERM then SIGKILL after 20 s). */
export async function endNode(n: DevNode, signal: "SIGTERM" | "SIGKILL"): Promise<boolean> {
  const pid = nodePid(n);
  rmSync(n.pidFile, { force: true });
  if (pid === undefined) return false;
  process.kill(pid, signal);
  for (let i = 0; i < 200 && isBrokerProcess(pid); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (isBrokerProcess(pid)) process.kill(pid, "SIGKILL");
  return true;
}
