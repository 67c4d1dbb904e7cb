// The folder check of `deno task check` (scripts/check_layers.ts) on made-up module graphs, and
// on the real one.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { problems } from "../scripts/check_layers.ts";

const root = new URL("..", import.meta.url);
const file = (path: string) => new URL(path, root).href;
const mod = (path: string, ...deps: string[]) => ({
  specifier: file(path),
  local: fileURLToPath(file(path)),
  dependencies: deps.map((d) => ({ code: { specifier: d.startsWith("npm:") ? d : file(d) } })),
});

describe("the layer check", () => {
  it("accepts imports downwards and within a folder", () => {
    const { errors, uses } = problems([
      mod("connector/a.ts", "connector/b.ts", "kafka/link.ts", "bus/envelope.ts"),
      mod("kafka/link.ts", "npm:kafkajs@2.2.4", "bus/_log.ts"),
      mod("mod.ts", "bus/platform.ts"),
    ]);
    assert.deepEqual(errors, []);
    assert.deepEqual([...uses.get("connector")!].sort(), ["bus", "kafka"]);
  });

  it("refuses an import upwards, a Kafka client outside kafka/, and a heavy core", () => {
    const { errors } = problems([
      mod("bus/platform.ts", "connector/connector.ts"),
      mod("presence/monitor.ts", "npm:/kafkajs@2.2.4/src/x.js"),
      mod("mod.ts", "connector/mod.ts"),
    ]);
    assert.equal(errors.length, 3, errors.join("\n"));
    assert.match(errors[0], /bus\/platform.ts imports connector\/connector.ts: bus\/ is below/);
    assert.match(errors[1], /presence\/monitor.ts loads the Kafka client kafkajs/);
    assert.match(errors[2], /mod.ts imports connector/);
  });

  it("refuses files that import each other, by way of any number of files", () => {
    const { errors } = problems([
      mod("bus/a.ts", "bus/b.ts"),
      mod("bus/b.ts", "bus/c.ts"),
      mod("bus/c.ts", "bus/a.ts"),
      mod("bus/d.ts", "bus/d.ts"),
      mod("bus/e.ts", "bus/a.ts"),
    ]);
    assert.deepEqual(errors, [
      "file loop: bus/a.ts -> bus/b.ts -> bus/c.ts -> bus/a.ts",
      "file loop: bus/d.ts -> bus/d.ts",
    ]);
  });

  it("passes on this repository", () => {
    const out = execFileSync(process.execPath, ["run", "-A", "scripts/check_layers.ts"], {
      cwd: fileURLToPath(root),
      encoding: "utf8",
    });
    assert.match(out, /Layers ok/);
  });
});
