// A real headless Chromium for the dashboard tests: the system's (Debian's `chromium`, which
// .ci/run installs), driven by puppeteer-core over the DevTools protocol.
import { existsSync } from "node:fs";
import process from "node:process";
import puppeteer from "puppeteer-core";
import type { Browser } from "puppeteer-core";

/**
 * The page's `document`, as the functions that run in the browser use it (the tests have no DOM
 * types): `declare const document: PageDocument;` in a test file.
 */
export interface PageDocument {
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }>;
}

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The browser binary (`CHROME_PATH` first), or undefined when none is installed. */
export function chromiumPath(): string | undefined {
  const given = process.env.CHROME_PATH;
  if (given) return given;
  return CANDIDATES.find((p) => existsSync(p));
}

/**
 * Why the browser tests cannot run here, or undefined when they can. In CI (`CI` set) a missing
 * browser is a failure, not a skip: .ci/run installs it.
 */
export function noBrowser(): string | undefined {
  if (chromiumPath() !== undefined) return undefined;
  const why = "no Chromium (apt-get install chromium, or set CHROME_PATH)";
  if (process.env.CI) throw new Error(`CI must run the browser tests: ${why}`);
  return why;
}

/** Starts a headless Chromium; `close()` it when done. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Tests run as root in CI containers, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    defaultViewport: { width: 1280, height: 800 },
    timeout: 60_000,
  });
}
