// The wire fast paths (mod.ts) against the @platformatic/kafka they were verified with: any
// other version fails here until they are verified again; and the fallback they take on a
// cluster that speaks other API versions.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as library from "@platformatic/kafka";
import type { Consumer, Producer } from "@platformatic/kafka";
import { packageVersion } from "../../bus/libraries.ts";
import { fetchPartition, produceDirect, VERIFIED_VERSION } from "./mod.ts";

describe("the wire fast paths", () => {
  it(`run on the @platformatic/kafka they were verified with (${VERIFIED_VERSION})`, () => {
    const installed = packageVersion("@platformatic/kafka", import.meta.url);
    const pinned = JSON.parse(readFileSync(new URL("../../deno.json", import.meta.url), "utf8"))
      .imports["@platformatic/kafka"];
    const again = "verify kafka/wire/ again (its tests, tests/broker/platformatic_link_test.ts, " +
      "bench/mesh_bench.ts), then set VERIFIED_VERSION in kafka/wire/mod.ts";
    assert.equal(
      pinned,
      `npm:@platformatic/kafka@${VERIFIED_VERSION}`,
      `deno.json pins ${pinned}: ${again}`,
    );
    assert.equal(
      installed,
      VERIFIED_VERSION,
      `@platformatic/kafka ${installed} is installed: ${again}`,
    );
  });

  it("find the library's internals they use", () => {
    for (const name of ["kGetApi", "kGetConnection", "kMetadata"] as const) {
      assert.equal(typeof library[name], "symbol", name);
    }
    for (const name of ["createAPI", "readRecordsBatch", "crc32c"] as const) {
      assert.equal(typeof library[name], "function", name);
    }
    assert.equal(typeof library.produceV11.parseResponse, "function");
    assert.equal(typeof library.Writer.create, "function");
  });

  it("leave the request to the library when the cluster speaks another version", async () => {
    const asked: string[] = [];
    // A client whose cluster speaks fetch v16 and produce v10: nothing else may be called.
    const client = {
      [library.kGetApi](name: string, done: (e: Error | null, api?: { version: number }) => void) {
        asked.push(name);
        done(null, { version: name === "Fetch" ? 16 : 10 });
      },
    };
    const fetched = await fetchPartition(client as unknown as Consumer, {
      topic: "t",
      topicId: new Uint8Array(16),
      partition: 0,
      leader: 1,
      offset: 0,
      maxWaitMs: 10,
      maxBytes: 1024,
    });
    assert.equal(fetched, undefined);
    const record = {
      topic: "t",
      partition: 0,
      key: new Uint8Array(),
      value: new Uint8Array(),
      headers: [],
    };
    assert.equal(await produceDirect(client as unknown as Producer, [record], 1), false);
    assert.deepEqual(asked, ["Fetch", "Produce"]);
  });
});
