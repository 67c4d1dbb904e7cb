/**
 * The oldest Node.js the npm package runs on: `@platformatic/kafka` needs 22.22 (and
 * `Promise.withResolvers` and `await using` come with Node 22).
 *
 * @module
 */
import process from "node:process";

/** The oldest Node.js version the package supports. */
export const MIN_NODE = "22.22.0";

/**
 * Why this runtime cannot run minimesh, with what to do, or undefined when it can (Deno always
 * can: it ships what the package needs).
 */
export function runtimeProblem(versions: Record<string, string | undefined> = process.versions):
  | string
  | undefined {
  if (versions.deno !== undefined) return undefined;
  const node = versions.node;
  if (node === undefined) return undefined;
  const [a, b] = node.split(".").map(Number);
  const [x, y] = MIN_NODE.split(".").map(Number);
  if (a > x || (a === x && b >= y)) return undefined;
  return `minimesh needs Node.js ${MIN_NODE} or later; this is ${node}. Install a newer Node ` +
    `(https://nodejs.org), or run it with \`npx node@22 ...\``;
}
