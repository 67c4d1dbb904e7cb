/**
 * Application configuration: `application.yml` (or `.yaml`) and `application.properties`,
 * overridden by environment variables and by `-Dkey=value` command-line flags.
 *
 * Precedence, highest first: `-D` flags, `properties` given in code, environment variables
 * (`cloud.connector` is read from `CLOUD_CONNECTOR`), `application.properties`,
 * `application.yml`, then `defaults` given in code. Values may refer to other keys or environment variables as
 * `${NAME}` or `${NAME:default}`.
 *
 * A properties file named by a key (as `cloud.client.properties` names the Kafka client's, see
 * {@link AppConfig.propertiesFile}) sits between the environment and `application.properties`:
 * a flag, code or the environment still override what it says.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./errors.ts";

/** Where configuration comes from. Every field is optional. */
export interface ConfigOptions {
  /** Folder holding `application.yml` / `application.properties` (default: the working folder). */
  dir?: string;
  /** Command-line arguments scanned for `-Dkey=value` (default: the process's arguments). */
  args?: readonly string[];
  /** Environment variables (default: the process environment). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values set in code; they override the files and the environment, not `-D` flags. */
  properties?: Readonly<Record<string, string | number | boolean>>;
  /** Values used only when nothing else sets the key (a program's own defaults). */
  defaults?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Parses a properties file as Java's `Properties.load` does: `#`/`!` comment lines, `=`, `:` or
 * white space between key and value, a line ending in an odd number of `\\` continued on the
 * next (its leading white space dropped), and the escapes `\\t`, `\\n`, `\\r`, `\\f`,
 * `\\uXXXX` and `\\` before any other character (`key\\:x`, `sp\\ ace`) in keys and values.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { parseProperties } from "./config.ts";
 * const p = parseProperties("a=b\\nc\nkey\\:x = caf\\u00e9\nsp\\ ace: 1\nlong = one, \\\n    two");
 * assert.deepEqual([...p], [["a", "b\nc"], ["key:x", "café"], ["sp ace", "1"], ["long", "one, two"]]);
 * ```
 */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of logicalLines(text)) {
    let at = 0;
    while (at < line.length && !" \t\f=:".includes(line[at])) at += line[at] === "\\" ? 2 : 1;
    const key = unescape(line.slice(0, Math.min(at, line.length)));
    while (at < line.length && " \t\f".includes(line[at])) at++;
    if (at < line.length && "=:".includes(line[at])) at++;
    while (at < line.length && " \t\f".includes(line[at])) at++;
    out.set(key, unescape(line.slice(at)));
  }
  return out;
}

// The logical lines of a properties file, as Java's LineReader reads them: leading white space
// and blank lines skipped, comments only where a logical line starts, a line ending in an odd
// number of backslashes joined to the next (whose leading white space goes).
function* logicalLines(text: string): Generator<string> {
  const n = text.length;
  let i = 0;
  for (;;) {
    let line = "";
    let skipSpace = true, joined = false, backslash = false;
    for (;;) {
      if (i >= n) {
        if (line.length > 0) yield backslash ? line.slice(0, -1) : line;
        return;
      }
      const c = text[i++];
      if (skipSpace) {
        if (c === " " || c === "\t" || c === "\f") continue;
        if (!joined && (c === "\r" || c === "\n")) continue;
        skipSpace = joined = false;
      }
      if (line.length === 0 && (c === "#" || c === "!")) {
        while (i < n && text[i] !== "\r" && text[i] !== "\n") i++;
        skipSpace = true;
        continue;
      }
      if (c !== "\n" && c !== "\r") {
        line += c;
        backslash = c === "\\" ? !backslash : false;
        continue;
      }
      if (line.length === 0) { // an empty line after a joined one
        skipSpace = true;
        continue;
      }
      if (i >= n) {
        yield backslash ? line.slice(0, -1) : line;
        return;
      }
      if (!backslash) {
        yield line;
        break;
      }
      line = line.slice(0, -1);
      skipSpace = joined = true;
      backslash = false;
      if (c === "\r" && text[i] === "\n") i++;
    }
  }
}

const ESCAPES: Record<string, string> = { t: "\t", n: "\n", r: "\r", f: "\f" };

// Java's escapes; a malformed \uXXXX is kept as written (Java would refuse the whole file).
function unescape(s: string): string {
  if (!s.includes("\\")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== "\\" || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[++i];
    if (e === "u" && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 5), 16));
      i += 4;
    } else out += ESCAPES[e] ?? e;
  }
  return out;
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, value === null || value === undefined ? "" : String(value));
  }
}

/** Where a value came from, highest precedence first. */
export type ConfigLayer = "flag" | "code" | "env" | "file" | "default";

/** A properties file named by a configuration key: where it was found and what it holds. */
export interface PropertiesFile {
  /** The configuration key that names it (`cloud.client.properties`). */
  key: string;
  /** The file read, or undefined when none of the locations exists. */
  path: string | undefined;
  /** Its entries, with `${...}` references resolved. */
  values: ReadonlyMap<string, string>;
}

/**
 * Reads a PEM file that the configuration key `key` names (a certificate, a key, a CA).
 *
 * @throws {ConfigError} Naming the key and the path when it cannot be read.
 */
export function readPemFile(key: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(key, path, `a readable PEM file (${(e as { code?: string }).code ?? e})`);
  }
}

/** `cloud.connector` → `CLOUD_CONNECTOR`: how a key is looked up in the environment. */
export function envName(key: string): string {
  return key.toUpperCase().replace(/[^A-Z0-9]/g, "_");
}

/**
 * Configuration values by dotted key.
 *
 * @example Values set in code and read back with a type
 * ```ts
 * import assert from "node:assert";
 * import { AppConfig } from "@minimesh/core";
 * const config = new AppConfig({ dir: "/nonexistent", args: [], env: {}, properties: { "a.b": 3 } });
 * assert(config.getNumber("a.b", 0) === 3);
 * assert(config.getString("cloud.connector", "none") === "none");
 * ```
 */
export class AppConfig {
  readonly #defaults = new Map<string, string>();
  readonly #files = new Map<string, string>();
  readonly #code = new Map<string, string>();
  readonly #flags = new Map<string, string>();
  readonly #env: Readonly<Record<string, string | undefined>>;
  /** The folder the files were read from. */
  readonly dir: string;
  /** The files that were found and read. */
  readonly sources: readonly string[];

  /**
   * Reads the files in `dir` and the overrides.
   *
   * @throws {ConfigError} When a file cannot be parsed.
   */
  constructor(options: ConfigOptions = {}) {
    this.dir = options.dir ?? process.cwd();
    this.#env = options.env ?? process.env;
    const sources: string[] = [];
    for (const name of ["application.yml", "application.yaml"]) {
      const file = join(this.dir, name);
      if (!existsSync(file)) continue;
      let doc: unknown;
      try {
        doc = parseYaml(readFileSync(file, "utf8"));
      } catch (e) {
        throw new ConfigError(file, (e as Error).message.split("\n")[0], "valid YAML");
      }
      flatten(doc, "", this.#files);
      sources.push(file);
      break;
    }
    const props = join(this.dir, "application.properties");
    if (existsSync(props)) {
      for (const [k, v] of parseProperties(readFileSync(props, "utf8"))) this.#files.set(k, v);
      sources.push(props);
    }
    this.sources = sources;
    for (const [k, v] of Object.entries(options.properties ?? {})) this.#code.set(k, String(v));
    for (const [k, v] of Object.entries(options.defaults ?? {})) this.#defaults.set(k, String(v));
    for (const arg of options.args ?? process.argv.slice(2)) {
      const m = /^-D([^=]+)=(.*)$/.exec(arg);
      if (m) this.#flags.set(m[1], m[2]);
    }
  }

  /** Which layer sets `key` (`file` is `application.properties` / `.yml`), or undefined. */
  layer(key: string): ConfigLayer | undefined {
    if (this.#flags.has(key)) return "flag";
    if (this.#code.has(key)) return "code";
    if (this.#env[envName(key)] !== undefined) return "env";
    if (this.#files.has(key)) return "file";
    return this.#defaults.has(key) ? "default" : undefined;
  }

  /**
   * Reads the properties file that `key` names: a comma-separated list of locations, the first
   * that exists wins, as in the Java original (`file:/abs/path`, `classpath:/name` and a plain
   * relative path all resolve against this configuration's folder, which plays the classpath's
   * part). Values may use `${NAME}` like any other.
   *
   * @param key The key naming the locations (`cloud.client.properties`).
   * @param fallback The locations when the key is not set (`kafka.properties`).
   * @throws {ConfigError} When `key` is set and none of its locations exists, or a file cannot
   * be read: a file that was asked for is never silently left out.
   */
  propertiesFile(key: string, fallback: string): PropertiesFile {
    const given = this.getString(key);
    const locations = (given ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);
    for (const location of locations) {
      const path = this.#locate(location);
      if (!existsSync(path)) continue;
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        throw new ConfigError(key, path, `a readable file (${(e as Error).message})`);
      }
      const values = new Map<string, string>();
      for (const [k, v] of parseProperties(text)) values.set(k, this.#resolve(v, 0));
      return { key, path, values };
    }
    if (given !== undefined) {
      throw new ConfigError(key, given, "a list of files of which at least one exists");
    }
    return { key, path: undefined, values: new Map() };
  }

  #locate(location: string): string {
    const bare = location.replace(/^(file|classpath):/, "");
    if (location.startsWith("classpath:")) return join(this.dir, bare.replace(/^\/+/, ""));
    return isAbsolute(bare) ? bare : join(this.dir, bare);
  }

  /**
   * The value of `key` from a flag, code or the environment if one sets it, else from `file`,
   * else from the configuration files and defaults: a properties file named by a key ranks
   * between the environment and `application.properties`. `fileKey` is the key's name in the
   * file when it differs (`presence.properties` calls `presence.url` just `url`).
   */
  getFromFile(file: PropertiesFile, key: string, fileKey = key): string | undefined {
    const layer = this.layer(key);
    if (layer === "flag" || layer === "code" || layer === "env") return this.getString(key);
    return file.values.get(fileKey) ?? this.getString(key);
  }

  /** The raw value of `key` before `${...}` substitution, or undefined. */
  #raw(key: string): string | undefined {
    return this.#flags.get(key) ?? this.#code.get(key) ?? this.#env[envName(key)] ??
      this.#files.get(key) ?? this.#defaults.get(key);
  }

  #resolve(value: string, depth: number): string {
    if (!value.includes("${")) return value;
    return value.replace(/\$\{([^}:]+)(?::([^}]*))?\}/g, (_, name: string, dflt?: string) => {
      const found = this.#env[name] ?? (depth < 10 ? this.#lookup(name, depth + 1) : undefined);
      return found ?? dflt ?? "";
    });
  }

  #lookup(key: string, depth: number): string | undefined {
    const raw = this.#raw(key);
    return raw === undefined ? undefined : this.#resolve(raw, depth);
  }

  /**
   * The value of `key` as a string, or `fallback` when it is not set.
   *
   * @example
   * ```ts
   * import assert from "node:assert";
   * import { AppConfig } from "@minimesh/core";
   * const c = new AppConfig({ args: ["-Dcloud.connector=kafka"], env: {}, dir: "/nonexistent" });
   * assert(c.getString("cloud.connector") === "kafka");
   * ```
   */
  getString(key: string): string | undefined;
  /** The value of `key` as a string, or `fallback` when it is not set. */
  getString(key: string, fallback: string): string;
  getString(key: string, fallback?: string): string | undefined {
    return this.#lookup(key, 0) ?? fallback;
  }

  /**
   * The value of `key` as a number.
   *
   * @throws {ConfigError} When the value is set but is not a number.
   */
  getNumber(key: string, fallback: number): number {
    const v = this.#lookup(key, 0);
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new ConfigError(key, v, "a number");
    return n;
  }

  /**
   * The value of `key` as a boolean (`true`/`false`, any case).
   *
   * @throws {ConfigError} When the value is set but is neither.
   */
  getBoolean(key: string, fallback: boolean): boolean {
    const v = this.#lookup(key, 0)?.toLowerCase();
    if (v === undefined || v === "") return fallback;
    if (v === "true") return true;
    if (v === "false") return false;
    throw new ConfigError(key, v, "true or false");
  }

  /** The value of `key` split at commas, trimmed, empty entries dropped. */
  getList(key: string): string[] {
    return (this.#lookup(key, 0) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  }

  /**
   * The value of `key`, which must be one of `allowed`.
   *
   * @throws {ConfigError} Naming the key, the value and what is allowed.
   */
  getChoice<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.#lookup(key, 0);
    if (v === undefined || v === "") return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(key, v, allowed.join(" or "));
    }
    return v as T;
  }

  /** Every key set by a default, a file, in code or by a flag (not environment variables). */
  keys(): string[] {
    return [
      ...new Set([
        ...this.#defaults.keys(),
        ...this.#files.keys(),
        ...this.#code.keys(),
        ...this.#flags.keys(),
      ]),
    ].sort();
  }
}
