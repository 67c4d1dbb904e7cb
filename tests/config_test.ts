import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AppConfig, ConfigError, Platform, PostOffice, setupLogging } from "../mod.ts";
import { captureLogs, configDir, deferred, sleep, testPlatform } from "./_helpers.ts";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { parseProperties } from "../bus/config.ts";
import { KNOWN_KEYS } from "../bus/_known_keys.ts";

describe("AppConfig", () => {
  const dir = configDir({
    "application.yml": [
      "application:",
      "  name: from-yaml",
      "server:",
      "  port: 8080",
      "cloud:",
      "  connector: none",
      "list:",
      "  - a",
      "  - b",
      "greeting: hello ${USER_NAME:nobody}",
      "ref: port is ${server.port}",
    ].join("\n"),
    "application.properties": "# comment\nserver.port=8085\nflag: true\nlong=a\\\n  b\n",
  });

  it("reads YAML and properties, properties winning", () => {
    const c = new AppConfig({ dir, args: [], env: {} });
    assert.equal(c.getString("application.name"), "from-yaml");
    assert.equal(c.getNumber("server.port", 0), 8085);
    assert.equal(c.getBoolean("flag", false), true);
    assert.equal(c.getString("list[1]"), "b");
    assert.equal(c.getString("long"), "ab");
    assert.equal(c.sources.length, 2);
    assert.ok(c.keys().includes("server.port"));
  });

  it("lets environment variables and then -D flags override the files", () => {
    const env = { SERVER_PORT: "9000", CLOUD_CONNECTOR: "kafka" };
    const c = new AppConfig({ dir, args: [], env });
    assert.equal(c.getNumber("server.port", 0), 9000);
    const d = new AppConfig({ dir, args: ["-Dserver.port=9100", "other"], env });
    assert.equal(d.getNumber("server.port", 0), 9100);
    assert.equal(d.getString("cloud.connector"), "kafka");
  });

  it("puts values set in code between the environment and -D flags", () => {
    const c = new AppConfig({
      dir,
      args: ["-Da.b=flag"],
      env: { A_B: "env", C_D: "env" },
      properties: { "a.b": "code", "c.d": "code" },
    });
    assert.equal(c.getString("a.b"), "flag");
    assert.equal(c.getString("c.d"), "code");
  });

  it("uses defaults given in code only when nothing else sets the key", () => {
    const c = new AppConfig({
      dir,
      args: [],
      env: {},
      defaults: { "server.port": 1, "only.default": "d" },
    });
    assert.equal(c.getNumber("server.port", 0), 8085);
    assert.equal(c.getString("only.default"), "d");
  });

  it("substitutes ${VAR:default} from the environment and from other keys", () => {
    assert.equal(
      new AppConfig({ dir, args: [], env: {} }).getString("greeting"),
      "hello nobody",
    );
    assert.equal(
      new AppConfig({ dir, args: [], env: { USER_NAME: "ann" } }).getString("greeting"),
      "hello ann",
    );
    assert.equal(new AppConfig({ dir, args: [], env: {} }).getString("ref"), "port is 8085");
  });

  it("names the key and the value when a value has the wrong type", () => {
    const c = new AppConfig({ dir, args: ["-Dn=abc", "-Db=maybe"], env: {} });
    assert.throws(() => c.getNumber("n", 1), /Invalid config n="abc": expected a number/);
    assert.throws(() => c.getBoolean("b", true), ConfigError);
    assert.equal(c.getNumber("missing", 7), 7);
  });

  it("reports a malformed YAML file by name", () => {
    const bad = configDir({ "application.yml": "a: [1, 2\nb: :" });
    assert.throws(() => new AppConfig({ dir: bad, args: [], env: {} }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes("application.yml"), e.message);
      return true;
    });
  });
});

describe("cloud.connector", () => {
  it("defaults to none", () => assert.equal(testPlatform().cloudConnector, "none"));

  it("accepts kafka from a -D flag", () => {
    const p = testPlatform({ args: ["-Dcloud.connector=kafka"] });
    assert.equal(p.cloudConnector, "kafka");
  });

  it("fails at start on an unknown value, naming it", () => {
    assert.throws(() => testPlatform({ env: { CLOUD_CONNECTOR: "rabbitmq" } }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        'Invalid config cloud.connector="rabbitmq": expected none or kafka',
      );
      return true;
    });
  });
});

describe("multicast.yaml", () => {
  it("relays each event to every target", async () => {
    const dir = configDir({
      "multicast.yaml": "multicast:\n  - source: order.placed\n    targets:\n" +
        "      - inventory.handler\n      - audit.handler\n",
    });
    const p = new Platform({ dir, args: [], env: {} });
    assert.equal(p.isPrivate("order.placed"), true);
    const got: string[] = [];
    const both = deferred();
    for (const route of ["inventory.handler", "audit.handler"]) {
      p.register(route, (h, body) => {
        got.push(`${route}:${body}:${h.k}`);
        if (got.length === 2) both.resolve();
      });
    }
    await new PostOffice({}, p).send({ to: "order.placed", body: 42, headers: { k: "v" } });
    await both.promise;
    assert.deepEqual(got.sort(), ["audit.handler:42:v", "inventory.handler:42:v"]);
  });

  it("logs a target that does not exist instead of failing the others", async () => {
    const dir = configDir({
      "multicast.yaml": "multicast:\n  - source: a.src\n    targets: [a.missing, a.there]\n",
    });
    const p = new Platform({ dir, args: [], env: {} });
    const got = deferred<unknown>();
    p.register("a.there", (_h, b) => got.resolve(b));
    const logs = await captureLogs();
    try {
      await new PostOffice({}, p).send({ to: "a.src", body: "x" });
      assert.equal(await got.promise, "x");
      await sleep(1);
    } finally {
      await logs.stop();
    }
    assert.ok(
      logs.lines.some((l) => l.includes("Multicast a.src -> a.missing failed: Route a.missing")),
      logs.lines.join("\n"),
    );
  });

  const bad: [string, string, RegExp][] = [
    ["no list", "multicast: 5\n", /a list of \{source, targets\}/],
    ["no targets", "multicast:\n  - source: a.b\n", /multicast\[0\]/],
    ["a bad route", "multicast:\n  - source: a.b\n    targets: [Bad]\n", /Invalid route "Bad"/],
    ["a loop", "multicast:\n  - source: a.b\n    targets: [a.b]\n", /not in targets/],
  ];
  for (const [name, text, message] of bad) {
    it(`rejects ${name} at start`, () => {
      const dir = configDir({ "multicast.yaml": text });
      assert.throws(() => new Platform({ dir, args: [], env: {} }), message);
    });
  }

  it("fails when yaml.multicast names a missing file", () => {
    assert.throws(
      () => testPlatform({ properties: { "yaml.multicast": "/nonexistent/m.yaml" } }),
      /yaml.multicast/,
    );
  });
});

describe("logging", () => {
  it("rejects an unknown level by name", async () => {
    await assert.rejects(setupLogging("loud"), /Unknown log level "loud"/);
  });
});

// Java reads the files here; without it (test:unit on a machine without a JDK) this case says so.
// CI has Java (.ci/run checks), so there it always runs.
function javaMissing(): string | false {
  if (process.env.CI) return false;
  try {
    execFileSync("java", ["-version"], { stdio: "ignore" });
    return false;
  } catch {
    return "needs Java 11+ on PATH (java.util.Properties is the reference)";
  }
}

describe("properties files, read as Java reads them", () => {
  it("parseProperties gives what java.util.Properties gives, on generated files", {
    skip: javaMissing(),
  }, () => {
    // Pieces with every rule of the format: escapes, separators, continuations, comments.
    const pieces = [
      "a",
      "key",
      "x.y",
      "\\:",
      "\\=",
      "\\ ",
      "\\\\",
      "\\n",
      "\\t",
      "\\u00e9",
      "\\u20ac",
      "é",
      " ",
      "  ",
      "=",
      ":",
      "\t",
      "#",
      "!",
      "\\\n   ",
      "\\\n",
      "b\\",
      "\\\\\\\n  ",
      "v",
    ];
    const piece = fc.constantFrom(...pieces);
    const line = fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => p.join(""));
    const file = fc.array(line, { minLength: 1, maxLength: 6 }).map((l) => l.join("\n"));
    const files = fc.sample(file, { numRuns: 150, seed: 31 });
    const dir = mkdtempSync(join(tmpdir(), "minimesh-props-"));
    try {
      const paths = files.map((text, i) => {
        const path = join(dir, `${i}.properties`);
        writeFileSync(path, text);
        return path;
      });
      const java = execFileSync("java", [
        fileURLToPath(new URL("./fixtures/LoadProperties.java", import.meta.url)),
        ...paths,
      ], { encoding: "utf8" }).trim().split("\n");
      assert.equal(java.length, files.length);
      files.forEach((text, i) => {
        const ours = Object.fromEntries(
          [...parseProperties(text)].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
        );
        assert.deepEqual(ours, JSON.parse(java[i]), JSON.stringify(text));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("misspelt settings", () => {
  it("are named with the key they were likely meant to be; the application's own are not", async () => {
    const logs = await captureLogs();
    try {
      testPlatform({
        dir: configDir({ "application.properties": "cloud.conector=kafka\nmy.own.setting=1\n" }),
        args: ["-Dserver.prot=8080", "-Dserver.port=8080", "-Dorders.max=3"],
      });
    } finally {
      await logs.stop();
    }
    const warned = logs.lines.filter((l) => /Unknown setting/.test(l));
    assert.equal(warned.length, 2, warned.join("\n"));
    assert.match(
      warned.join("\n"),
      /cloud\.conector \(.*application\.properties\).*cloud\.connector\?/,
    );
    assert.match(warned.join("\n"), /server\.prot \(-Dserver\.prot\).*server\.port\?/);
  });

  it("the list of known keys holds every key the library reads by name", () => {
    const root = new URL("..", import.meta.url);
    const read = new Set<string>();
    for (
      const dir of ["bus", "runtime", "kafka", "protocol", "actuator", "connector", "presence"]
    ) {
      for (const e of readdirSync(new URL(dir, root), { recursive: true, withFileTypes: true })) {
        if (!e.isFile() || !e.name.endsWith(".ts") || e.name.endsWith("_test.ts")) continue;
        // Code only: doc comments' examples read keys of their own.
        const text = readFileSync(join(e.parentPath, e.name), "utf8").split("\n")
          .filter((l) => !/^\s*\*/.test(l)).join("\n");
        for (
          const m of text.matchAll(
            /(?:config|c)\.get(?:String|Number|Boolean|List|Choice)\(\s*"([a-z][a-z0-9.-]*)"/g,
          )
        ) {
          read.add(m[1]);
        }
      }
    }
    assert.ok(read.size > 40, `found ${read.size} keys`);
    assert.deepEqual([...read].filter((k) => !KNOWN_KEYS.has(k)).sort(), []);
  });
});
