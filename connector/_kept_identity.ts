// An instance with a fixed appId keeps its identity secret in a file, so that a process that
// crashed and starts again on the same machine proves it is the same instance and takes its
// origin back at once, instead of waiting out the monitors' hold (see lease_table.ts). A pid file
// beside the secret says whether the process that used it still runs: a second process with the
// same appId on the machine gets no kept secret, so the monitors keep refusing it (4403).
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Where kept secrets live by default: a folder of this user's own. */
export function defaultIdentityDir(): string {
  return join(homedir(), ".minimesh", "identity");
}

/**
 * The secret kept for `appId` in `dir`, created on first use; `undefined` when another running
 * process of this machine holds it, or when the folder is not this user's alone or cannot be
 * written (the caller then uses a new secret, as for an instance without a fixed appId).
 */
export function keptIdentity(dir: string, appId: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    // Another user who could write here could plant a secret of their choice.
    if ((st.mode & 0o022) !== 0 || (process.getuid && st.uid !== process.getuid())) {
      return undefined;
    }
    const name = createHash("sha256").update(appId).digest("hex").slice(0, 32);
    const pidFile = join(dir, `${name}.pid`);
    const holder = Number(readOr(pidFile, ""));
    if (holder > 0 && holder !== process.pid && running(holder)) return undefined;
    writeFileSync(pidFile, String(process.pid), { mode: 0o600 });
    const secretFile = join(dir, `${name}.secret`);
    const kept = readOr(secretFile, "");
    if (kept.length >= 32) return kept;
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    const tmp = `${secretFile}.${process.pid}`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, secret);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, secretFile); // whole or absent, even if this process dies here
    return secret;
  } catch {
    return undefined;
  }
}

function readOr(file: string, otherwise: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return otherwise;
  }
}

// Signal 0 checks existence only; EPERM means a process of another user has that pid.
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}
