import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { keptIdentity } from "./_kept_identity.ts";

function inTempDir(f: (dir: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), "minimesh-kept-"));
  try {
    f(join(root, "identity"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const pidFile = (dir: string) => join(dir, readdirSync(dir).find((f) => f.endsWith(".pid"))!);

describe("keptIdentity", () => {
  it("keeps one secret per appId, in a folder of this user's alone", () => {
    inTempDir((dir) => {
      const a = keptIdentity(dir, "app-a");
      assert.ok(a !== undefined && a.length >= 32);
      assert.equal(keptIdentity(dir, "app-a"), a);
      assert.notEqual(keptIdentity(dir, "app-b"), a);
    });
  });

  it("gives the secret to a process after the one that held it ended, not while it runs", () => {
    inTempDir((dir) => {
      const a = keptIdentity(dir, "app")!;
      // A process that ran and ended (its pid is free): like one killed with -9.
      const ended = spawnSync(process.execPath, ["eval", "0"]).pid!;
      writeFileSync(pidFile(dir), String(ended));
      assert.equal(keptIdentity(dir, "app"), a);
      // Our parent runs: a second process with this appId gets none.
      writeFileSync(pidFile(dir), String(process.ppid));
      assert.equal(keptIdentity(dir, "app"), undefined);
    });
  });

  it("refuses a folder that others may write, and a folder it cannot make", () => {
    inTempDir((dir) => {
      keptIdentity(dir, "app");
      chmodSync(dir, 0o777);
      assert.equal(keptIdentity(dir, "app"), undefined);
    });
    assert.equal(keptIdentity("/proc/no-such/identity", "app"), undefined);
  });
});
