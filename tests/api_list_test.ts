// The public API list in docs/architecture.md against what the entries export (`deno doc`):
// a name added, removed or exported twice without the list saying so fails here.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const config = JSON.parse(readFileSync(`${root}/deno.json`, "utf8"));
const entries = Object.values(config.exports as Record<string, string>)
  .map((path) => path.replace(/^\.\//, ""));

// Entry file -> the names the docs list for it ("- `@minimesh/core` (`mod.ts`), 50: `A`, `B`.").
function listed(): Map<string, string[]> {
  const text = readFileSync(`${root}/docs/architecture.md`, "utf8");
  const section = text.slice(text.indexOf("## Public API"));
  const out = new Map<string, string[]>();
  for (const item of section.split(/\n- /).slice(1)) {
    const m = /^`[^`]+` \(`([^`]+)`\), (\d+): ([\s\S]*?)\.\n/.exec(item + "\n");
    if (m === null) continue;
    const names = [...m[3].matchAll(/`([^`]+)`/g)].map((n) => n[1]);
    assert.equal(names.length, Number(m[2]), `the count given for ${m[1]}`);
    out.set(m[1], names);
  }
  return out;
}

describe("the public API list (docs/architecture.md)", () => {
  it("names exactly what each entry exports, each name once", () => {
    const json = execFileSync(process.execPath, ["doc", "--json", ...entries], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      maxBuffer: 64 * 1024 * 1024,
    });
    const nodes = JSON.parse(json).nodes as Record<string, { symbols: { name: string }[] }>;
    const docs = listed();
    assert.deepEqual([...docs.keys()].sort(), [...entries].sort(), "one list per entry");
    const seen = new Map<string, string>();
    for (const [url, { symbols }] of Object.entries(nodes)) {
      const entry = fileURLToPath(url).slice(root.length).replace(/^\//, "");
      const actual = symbols.map((s) => s.name).sort();
      assert.deepEqual([...docs.get(entry)!].sort(), actual, `the names of ${entry}`);
      for (const name of actual) {
        assert.equal(
          seen.get(name),
          undefined,
          `${name} exported by ${entry} and ${seen.get(name)}`,
        );
        seen.set(name, entry);
      }
    }
  });
});
