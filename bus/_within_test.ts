import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { within } from "./_within.ts";

describe("within", () => {
  it("says whether the work settled in time, and passes its failure on", async () => {
    const soon = new Promise((r) => setTimeout(r, 10));
    assert.equal(await within(soon, 1000), true);
    const t0 = Date.now();
    assert.equal(await within(new Promise(() => {}), 50), false);
    assert.ok(Date.now() - t0 >= 45, "waited for the bound");
    await assert.rejects(within(Promise.reject(new Error("no")), 1000), /no/);
  });
});
