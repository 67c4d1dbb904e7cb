import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RecentKeys } from "./_recent_keys.ts";

const encoder = new TextEncoder();
const key = (s: string) => encoder.encode(s);
const counterKey = (i: number) => key("0123456789abcdef" + i.toString(16).padStart(16, "0"));

describe("RecentKeys", () => {
  it("refuses a key it remembers, within at least half its size", () => {
    const recent = new RecentKeys(1024);
    for (let i = 0; i < 512; i++) assert.equal(recent.add(counterKey(i)), true);
    for (let i = 0; i < 512; i++) assert.equal(recent.add(counterKey(i)), false, `key ${i}`);
  });

  it("forgets the oldest keys beyond its size", () => {
    const recent = new RecentKeys(1024);
    for (let i = 0; i < 2048; i++) recent.add(counterKey(i));
    assert.equal(recent.add(counterKey(0)), true);
    assert.equal(recent.add(counterKey(2047)), false);
  });

  it("takes no distinct key for one seen: 300,000 counter keys and random ones", () => {
    const recent = new RecentKeys(32_768);
    for (let i = 0; i < 300_000; i++) assert.equal(recent.add(counterKey(i)), true, `key ${i}`);
    for (let i = 0; i < 100_000; i++) {
      assert.equal(recent.add(key(crypto.randomUUID().replaceAll("-", ""))), true);
    }
  });

  it("tells keys of other lengths apart", () => {
    const recent = new RecentKeys(64);
    assert.equal(recent.add(key("abc")), true);
    assert.equal(recent.add(key("abc\0")), true);
    assert.equal(recent.add(key("")), true);
    assert.equal(recent.add(key("")), false);
  });
});
