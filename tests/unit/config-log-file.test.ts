import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { makeHome, runCli, type TestHome } from "../support/cli.ts";

/** `log_file`, `log_max_mb`, `log_keep` (issue 17): defaults, paths, errors, and the CLI using them. */
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetcron-logcfg-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function load(config: unknown) {
  const path = join(dir, "etc", "config.json");
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  return loadConfig({ flag: path, env: { FLEETCRON_HOME: join(dir, "home") }, cwd: "/", version: "0" }).config;
}

describe("config keys", () => {
  test("default: no file (stderr), 10 MB, 5 kept", () => {
    expect(load({})).toMatchObject({ log_file: null, log_max_mb: 10, log_keep: 5 });
  });

  test("a relative log_file starts at the config file's folder", () => {
    expect(load({ log_file: "logs/agent.log" }).log_file).toBe(join(dir, "etc", "logs", "agent.log"));
    expect(load({ log_file: "/var/log/fc.log", log_max_mb: 0.5, log_keep: 0 })).toMatchObject({ log_file: "/var/log/fc.log", log_max_mb: 0.5, log_keep: 0 });
  });

  test("bad values name the key and what would be valid", () => {
    expect(() => load({ log_file: "", log_max_mb: 0, log_keep: 2.5 })).toThrow(
      /config\.json: log_file: must be a file path[^\n]*\n[^\n]*config\.json: log_max_mb: must be a number greater than 0 \(got 0\)\n[^\n]*config\.json: log_keep: must be an integer 0-1000 \(rotated files kept\) \(got 2\.5\)/,
    );
  });
});

describe("the CLI with log_file", () => {
  let t: TestHome;
  afterEach(() => t?.cleanup());

  test("warnings go to the file in the configured format (mode 600), not to stderr; --log-file overrides it", async () => {
    t = makeHome({ log_file: "fleetcron.log", log_format: "json", lease_sec: 30 });
    const result = await runCli(t, ["config", "check"]);
    expect(result.stderr).toBe("");
    const path = join(t.dir, "fleetcron.log");
    expect((statSync(path).mode & 0o777).toString(8)).toBe("600");
    const line = JSON.parse(readFileSync(path, "utf8").trim().split("\n")[0]!);
    expect(line).toMatchObject({ level: "warn" });
    expect(line.msg).toContain("lease_sec is obsolete");

    const other = join(t.dir, "elsewhere", "other.log");
    await runCli(t, ["--log-file", other, "config", "check"]);
    expect(readFileSync(other, "utf8")).toContain("lease_sec is obsolete");
    expect(readFileSync(path, "utf8").trim().split("\n")).toHaveLength(1);
  });

  test("a log file that cannot be opened falls back to stderr and says why", async () => {
    t = makeHome({ lease_sec: 30 });
    writeFileSync(join(t.dir, "not-a-dir"), "");
    const result = await runCli(t, ["--log-file", join(t.dir, "not-a-dir", "x.log"), "config", "check"]);
    expect(result.stderr).toContain(`log_file ${join(t.dir, "not-a-dir", "x.log")}:`);
    expect(result.stderr).toContain("logging to stderr meanwhile");
    expect(result.stderr).toContain("lease_sec is obsolete");
    expect(existsSync(join(t.dir, "not-a-dir", "x.log"))).toBe(false);
  });
});
