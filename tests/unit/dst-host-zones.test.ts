/**
 * The DST tables must give the same instants whatever zone the host runs in (date-fns-tz does not:
 * README, "Time zones and DST"). Each host zone needs its own process, because a runtime reads `TZ` at start-up.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const REPO_ROOT = join(import.meta.dir, "..", "..");
const DST_SUITE = "tests/unit/schedule-dst.test.ts";

describe("DST tables under other host zones", () => {
  for (const [hostZone, januaryOffset] of [
    ["UTC", 0],
    ["America/Los_Angeles", 480],
    ["Australia/Sydney", -660],
  ] as const) {
    test(`TZ=${hostZone}`, async () => {
      const child = Bun.spawn([process.execPath, "test", DST_SUITE], {
        cwd: REPO_ROOT,
        env: { ...process.env, TZ: hostZone },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, exitCode] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      const output = stdout + stderr;
      if (exitCode !== 0) console.error(output);
      expect(exitCode).toBe(0);
      expect(output).toContain(`[host-tz] TZ=${hostZone} januaryOffset=${januaryOffset}`);
      expect(output).toMatch(/\b[1-9]\d* pass\b/);
      expect(output).toMatch(/\b0 fail\b/);
    }, 60_000);
  }
});
