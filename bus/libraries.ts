/**
 * The libraries an application has loaded, with their versions, for `/info/lib`.
 *
 * @module
 */
import { createRequire } from "node:module";

/** This library's version. */
export const VERSION = "0.1.0";

const loaded = new Map<string, string>([["@minimesh/core", VERSION]]);

/** The version of an npm package as installed next to this module, or "unknown". */
export function packageVersion(name: string, from: string = import.meta.url): string {
  try {
    return String(createRequire(from)(`${name}/package.json`).version ?? "unknown");
  } catch {
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
