/**
 * `deno task build:npm`: builds the npm package `@minimesh/core` (the JSR package's name) into
 * `npm/` (ignored by git), without
 * dnt: the TypeScript compiler (from the npm registry) turns the library's sources into ESM
 * JavaScript and `.d.ts` files under `npm/esm/`, and `npm/package.json` is generated from
 * `deno.json` (version, exports, dependencies from the import map, `engines`, the presence
 * monitor's `bin`; `homepage` the JSR page, `repository` the clone's https origin, if any). `#runtime` maps to the Node adapter (`node:http` + `ws`).
 *
 * `--pack` also runs `npm pack` and prints the tarball's path.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { MIN_NODE } from "../runtime/node_version.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "npm");
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));

// Sources of the package: the library, never tests, examples, benchmarks or the Deno adapter.
const DENO_ONLY = ["runtime/deno.ts"];
const SOURCES = [
  "mod.ts",
  "bus/**/*.ts",
  "runtime/**/*.ts", // the worker threads' host is loaded by URL, not imported
  "connector/**/*.ts",
  "presence/**/*.ts",
  "actuator/**/*.ts",
  "cli/**/*.ts",
];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    // Node 22's library: catches built-ins newer than Node 22 (that Deno has) at build time.
    lib: ["ES2024", "ESNext.Disposable", "DOM", "DOM.Iterable"],
    types: ["node"],
    declaration: true,
    outDir: "npm/esm",
    rootDir: ".",
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    verbatimModuleSyntax: false,
    isolatedModules: true,
    noEmitOnError: true,
  },
  include: [...SOURCES, "scripts/npm_ambient.d.ts"],
  exclude: [...DENO_ONLY, "**/*_test.ts"],
};
const tsconfigPath = join(root, "tsconfig.npm.json");
writeFileSync(tsconfigPath, JSON.stringify(tsconfig, null, 2) + "\n");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
if (!existsSync(tsc) || !existsSync(join(root, "node_modules", "@types", "node"))) {
  // TypeScript and @types/node are in deno.json's imports, but no module imports them.
  execFileSync(process.execPath, ["install"], { cwd: root, stdio: "inherit" });
}
if (!existsSync(tsc)) throw new Error(`TypeScript is not installed at ${tsc}`);
console.log("Compiling with tsc ...");
try {
  execFileSync("node", [tsc, "-p", tsconfigPath], { cwd: root, stdio: "inherit" });
} finally {
  rmSync(tsconfigPath, { force: true });
}

// `.d.ts` files keep `.ts` in relative imports (microsoft/TypeScript#61037): point them at .js.
function fixDeclarations(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) fixDeclarations(p);
    else if (entry.name.endsWith(".d.ts")) {
      const text = readFileSync(p, "utf8");
      writeFileSync(
        p,
        text.replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2"),
      );
    }
  }
}
fixDeclarations(join(out, "esm"));

// The commands: the monitor and the CLI.
for (const main of [join(out, "esm", "presence", "main.js"), join(out, "esm", "cli", "main.js")]) {
  writeFileSync(main, "#!/usr/bin/env node\n" + readFileSync(main, "utf8"));
  chmodSync(main, 0o755);
}

const entry = (ts: string) => {
  const base = ts.replace(/^\.\//, "./esm/").replace(/\.ts$/, "");
  return { types: `${base}.d.ts`, default: `${base}.js` };
};
const exportsMap: Record<string, unknown> = {};
for (const [key, target] of Object.entries(deno.exports as Record<string, string>)) {
  if (DENO_ONLY.includes(target.replace(/^\.\//, ""))) continue;
  exportsMap[key] = entry(target);
}

// Imports only the tests use: not dependencies of the package.
const TEST_ONLY = [
  "fast-check",
  "@opentelemetry/sdk-trace",
  "@opentelemetry/sdk-metrics",
  "puppeteer-core",
];
// The Kafka client libraries: optional peers, loaded only when the mesh uses them (an
// application installs the one it uses: `@platformatic/kafka`, or `kafkajs` for
// kafka.client=kafkajs; none for the bus alone).
const KAFKA_CLIENTS = ["@platformatic/kafka", "kafkajs"];
const dependencies: Record<string, string> = {};
const peerDependencies: Record<string, string> = {};
for (const [name, spec] of Object.entries(deno.imports as Record<string, string>)) {
  if (TEST_ONLY.includes(name)) continue;
  const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)\/?$/.exec(spec);
  if (!m || name.endsWith("/") || name === "typescript") continue;
  if (name.startsWith("@types/")) continue;
  if (KAFKA_CLIENTS.includes(m[1])) peerDependencies[m[1]] = m[2];
  else dependencies[m[1]] = m[2];
}
dependencies["@types/ws"] = (deno.imports["@types/ws"] as string).split("@").pop()!;

// The package's pages: JSR's page of the same package always; the source repository when the
// build runs in a clone whose origin is a public address (no address is invented).
function originUrl(): string | undefined {
  try {
    const url = execFileSync("git", ["remote", "get-url", "origin"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    return /^https:\/\/[^\s]+$/.test(url) ? url.replace(/\.git$/, "") : undefined;
  } catch {
    return undefined;
  }
}
const source = originUrl();

const pkg = {
  name: deno.name,
  version: deno.version,
  description:
    "An in-memory event bus and, when an application opts in, a minimalist service mesh over Kafka",
  license: deno.license,
  homepage: `https://jsr.io/${deno.name}`,
  ...(source === undefined
    ? {}
    : { repository: { type: "git", url: `git+${source}.git` }, bugs: `${source}/issues` }),
  type: "module",
  exports: exportsMap,
  imports: { "#runtime": entry("./runtime/node.ts") },
  bin: { "minimesh-presence": "./esm/presence/main.js", "minimesh": "./esm/cli/main.js" },
  files: ["esm", "docs", "README.md", "LICENSE"],
  engines: { node: `>=${MIN_NODE}` },
  dependencies,
  peerDependencies,
  peerDependenciesMeta: Object.fromEntries(KAFKA_CLIENTS.map((n) => [n, { optional: true }])),
  keywords: ["event bus", "service mesh", "kafka", "rpc", "deno"],
};
writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
// Its own README (Node first, nothing that links outside the package), and the docs.
copyFileSync(join(root, "npm_package", "README.md"), join(out, "README.md"));
mkdirSync(join(out, "docs"), { recursive: true });
for (const f of readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md"))) {
  copyFileSync(join(root, "docs", f), join(out, "docs", f));
}
// The ready-made Grafana dashboard and alert rules.
mkdirSync(join(out, "docs", "grafana"), { recursive: true });
for (const f of readdirSync(join(root, "docs", "grafana"))) {
  copyFileSync(join(root, "docs", "grafana", f), join(out, "docs", "grafana", f));
}
copyFileSync(join(root, "LICENSE"), join(out, "LICENSE"));
console.log(`Built ${pkg.name}@${pkg.version} in ${out}`);

if (process.argv.includes("--pack")) {
  const name = execFileSync("npm", ["pack", "--silent"], { cwd: out, encoding: "utf8" }).trim();
  console.log(`Packed ${join(out, name.split("\n").pop()!)}`);
}
