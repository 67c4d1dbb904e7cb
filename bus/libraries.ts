/**
 * The libraries an application has loaded, with their versions, for `/info/lib`.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** This library's version. */
export const VERSION = "0.1.0";

const loaded = new Map<string, string>([["@minimesh/core", VERSION]]);

/** The version of an npm package as installed next to this module, or "unknown". */
export function packageVersion(name: string, from: string = import.meta.url): string {
  const require = createRequire(from);
  try {
    return String(require(`${name}/package.json`).version ?? "unknown");
  } catch {
    // A package whose `exports` leave out package.json (@platformatic/kafka): the one above
    // its entry point.
    try {
      let dir = dirname(require.resolve(name));
      for (let i = 0; i < 8; i++, dir = dirname(dir)) {
        try {
          const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
          if (pkg.name === name) return String(pkg.version ?? "unknown");
        } catch { /* none here: one folder up */ }
      }
    } catch { /* not installed */ }
    return "unknown";
  }
}

/** Records that `name` at `version` is loaded (modules call it when they are imported). */
export function registerLibrary(name: string, version: string): void {
  loaded.set(name, version);
}

/** Every library recorded as loaded, sorted by name. */
export function libraries(): { name: string; version: string }[] {
  return [...loaded].sort(([a], [b]) => a < b ? -1 : 1).map(([name, version]) => ({
    name,
    version,
  }));
}

for (const name of ["@msgpack/msgpack", "yaml", "@logtape/logtape"]) {
  registerLibrary(name, packageVersion(name));
}
