/**
 * `deno task check` runs this: the library's folders depend on each other in one direction.
 *
 * Reads the module graph (`deno info --json`) of every library file and fails when a module
 * imports from a folder above its own, when files import each other in a loop (within a folder
 * too), when anything outside `kafka/` loads the Kafka client, or when `mod.ts` (the
 * dependency-light core) reaches beyond `bus/`. Prints which folder uses
 * which. The order, bottom first, and why, is in docs/architecture.md.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The library's folders, bottom first: each may import only from folders before it. */
export const LAYERS = [
  "bus",
  "runtime",
  "kafka",
  "protocol",
  "actuator",
  "connector",
  "presence",
  "cli",
] as const;
const KAFKA_CLIENTS = ["kafkajs", "@platformatic/kafka"];

const root = fileURLToPath(new URL("..", import.meta.url));

interface Dependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface Module {
  specifier: string;
  local?: string;
  dependencies?: Dependency[];
}

/** The folder of a library file, or the file's name for the root entry points. */
function layerOf(file: string): string {
  const rel = relative(root, file);
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : rel;
}

/** Problems in the module graph: empty when the folders depend in one direction. */
export function problems(modules: Module[]): { errors: string[]; uses: Map<string, Set<string>> } {
  const errors: string[] = [];
  const uses = new Map<string, Set<string>>();
  const rank = (layer: string) => (LAYERS as readonly string[]).indexOf(layer);
  for (const m of modules) {
    if (m.local === undefined || !m.specifier.startsWith("file:")) continue;
    const from = layerOf(m.local);
    const fromRank = rank(from);
    if (fromRank < 0 && from !== "mod.ts") continue; // tests, scripts, internal.ts, ...
    for (const d of m.dependencies ?? []) {
      for (const spec of [d.code?.specifier, d.type?.specifier]) {
        if (spec === undefined) continue;
        const rel = relative(root, m.local);
        if (spec.startsWith("npm:")) {
          const name = spec.slice(4).replace(/^\/?((?:@[^/]+\/)?[^@/]+).*$/, "$1");
          if (KAFKA_CLIENTS.includes(name) && from !== "kafka") {
            errors.push(`${rel} loads the Kafka client ${name}: only kafka/ may`);
          }
          continue;
        }
        if (!spec.startsWith("file:")) continue;
        const to = layerOf(fileURLToPath(spec));
        if (to === from) continue;
        (uses.get(from) ?? uses.set(from, new Set()).get(from)!).add(to);
        if (from === "mod.ts") {
          if (to !== "bus") errors.push(`mod.ts imports ${to}/: the core entry reaches bus/ only`);
        } else if (rank(to) < 0 || rank(to) > fromRank) {
          errors.push(
            `${rel} imports ${relative(root, fileURLToPath(spec))}: ${from}/ is below ${to}/`,
          );
        }
      }
    }
  }
  errors.push(...loops(modules).map((l) => `file loop: ${l.join(" -> ")} -> ${l[0]}`));
  return { errors: [...new Set(errors)], uses };
}

/** The library's import loops (strongly connected files, Tarjan), each as a path of files. */
export function loops(modules: Module[]): string[][] {
  const edges = new Map<string, string[]>();
  for (const m of modules) {
    if (m.local === undefined || !m.specifier.startsWith("file:")) continue;
    const from = relative(root, m.local);
    const to = new Set<string>();
    for (const d of m.dependencies ?? []) {
      for (const spec of [d.code?.specifier, d.type?.specifier]) {
        if (spec?.startsWith("file:")) to.add(relative(root, fileURLToPath(spec)));
      }
    }
    edges.set(from, [...to]);
  }
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(component.reverse());
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

function libraryFiles(): string[] {
  const files = ["mod.ts"];
  for (const dir of LAYERS) {
    for (const e of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
        files.push(relative(root, join(e.parentPath, e.name)));
      }
    }
  }
  return files;
}

if (import.meta.main) {
  const modules = new Map<string, Module>();
  // One graph per file: a file that nothing imports is checked too.
  for (const file of libraryFiles()) {
    const out = execFileSync(process.execPath, ["info", "--json", file], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    for (const m of (JSON.parse(out) as { modules: Module[] }).modules) {
      modules.set(m.specifier, m);
    }
  }
  const { errors, uses } = problems([...modules.values()]);
  for (const layer of ["mod.ts", ...LAYERS]) {
    console.log(`${layer.padEnd(10)} -> ${[...(uses.get(layer) ?? [])].sort().join(", ") || "-"}`);
  }
  if (errors.length > 0) {
    for (const e of errors) console.error(`layer check: ${e}`);
    process.exit(1);
  }
  console.log(`Layers ok: ${LAYERS.join(" < ")}; no folder imports one above it, no file loops.`);
}
