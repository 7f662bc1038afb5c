import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Browser } from "playwright-core";

/** Debian's chromium, driven by playwright-core (its own browser download cannot reach the network here). */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** Screenshots the page tests keep. */
export const ARTIFACTS = resolve(import.meta.dir, "../artifacts");

/** Outside CI a missing browser skips the test and says so; in CI the test fails instead. */
export function warnIfNoChromium(what: string): void {
  if (!HAVE_CHROMIUM && !process.env.CI) {
    console.warn(`${what} browser test SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_BIN); in CI it fails instead`);
  }
}

/** Headless, with nothing reaching out to the network (its background connections would be refused here). */
export async function launchChromium(): Promise<Browser> {
  if (!HAVE_CHROMIUM) throw new Error(`Chromium is required in CI: no browser at ${CHROMIUM} (apt-get install -y chromium)`);
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
