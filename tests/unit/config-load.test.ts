import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleConfig } from "../../src/config/example.ts";
import { loadConfig, validateConfig } from "../../src/config/load.ts";
import { ConfigError, EXIT_USAGE } from "../../src/core/errors.ts";

/** The seed README's config, unchanged. */
const SEED_CONFIG = {
  mongodb_uri: "mongodb+srv://user:pass@cluster.mongodb.net/",
  db_name: "fleetcron",
  tz: "Asia/Seoul",
  max_serial: 10,
  secrets: {
    BASE_URL: "https://api.example.com",
    API_SECRET: "your-secret-key",
  },
};

let dir: string;
let home: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetcron-config-"));
  home = join(dir, "home");
  mkdirSync(home);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(content: unknown, name = "fleetcron.config.json", mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  chmodSync(path, mode);
  return path;
}

const load = (options: { flag?: string; env?: Record<string, string> } = {}) =>
  loadConfig({ flag: options.flag, env: { FLEETCRON_HOME: home, ...options.env }, cwd: dir, version: "1.2.3" });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  test("no file: every default, embedded store under the home folder", () => {
    const { config, warnings } = load();
    expect(warnings).toEqual([]);
    expect(config.path).toBeNull();
    expect(config.home).toBe(home);
    expect(config.store).toEqual({ kind: "sqlite", path: join(home, "fleetcron.db") });
    expect(config).toMatchObject({
      db_name: "fleetcron",
      max_serial: 10,
      heartbeat_sec: 5,
      dead_after_sec: 15,
      failover_step_sec: 5,
      lease_sec: 30,
      catchup_window_sec: 3600,
      history_days: 30,
      max_concurrent_runs: 50,
      user_agent: "FleetCron/1.2.3",
      log_level: "info",
      log_format: "pretty",
      http_port: null,
      http_host: "127.0.0.1",
      jobs_file: null,
      shutdown_timeout_sec: 30,
      machine_id: null,
      secrets: {},
    });
    expect(config.tz).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
  });

  test("the seed's config is valid as it is", () => {
    const path = writeConfig(SEED_CONFIG);
    const { config, warnings } = load();
    expect(warnings).toEqual([]);
    expect(config.path).toBe(path);
    expect(config.store).toEqual({ kind: "mongo", uri: SEED_CONFIG.mongodb_uri, dbName: "fleetcron" });
    expect(config.tz).toBe("Asia/Seoul");
    expect(config.secrets).toEqual(SEED_CONFIG.secrets);
  });

  test("the example config (and config init's object) is valid", () => {
    const example = JSON.parse(readFileSync(join(import.meta.dir, "../../config/fleetcron.config.example.json"), "utf8"));
    expect(example).toEqual(exampleConfig({ tz: "UTC", jobsFile: "jobs.example.json" }));
    writeConfig(exampleConfig());
    expect(load().warnings).toEqual([]);
  });

  test("env secrets override file secrets, keys kept as written", () => {
    writeConfig(SEED_CONFIG);
    const { config } = load({ env: { FLEETCRON_SECRET_API_SECRET: "from-env", FLEETCRON_SECRET_Slack_Hook: "hook" } });
    expect(config.secrets).toEqual({ BASE_URL: "https://api.example.com", API_SECRET: "from-env", Slack_Hook: "hook" });
  });

  test("relative paths start at the config file's folder", () => {
    mkdirSync(join(dir, "etc"));
    writeConfig({ sqlite_path: "data/fc.db", jobs_file: "jobs.json" }, "etc/fc.json");
    const { config } = load({ flag: "etc/fc.json" });
    expect(config.store).toEqual({ kind: "sqlite", path: join(dir, "etc", "data", "fc.db") });
    expect(config.jobs_file).toBe(join(dir, "etc", "jobs.json"));
  });

  test("sub-second timings are allowed", () => {
    writeConfig({ heartbeat_sec: 0.2, dead_after_sec: 0.6, lease_sec: 1, failover_step_sec: 0.25 });
    expect(load().config.heartbeat_sec).toBe(0.2);
  });

  test("unknown keys: a warning naming them, with a suggestion", () => {
    writeConfig({ heartbeat_secs: 3, colour: "blue" });
    const { warnings } = load();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('unknown key "heartbeat_secs"');
    expect(warnings[0]).toContain('did you mean "heartbeat_sec"?');
    expect(warnings[1]).toContain('unknown key "colour"');
  });

  test.skipIf(process.platform === "win32")("a config readable by others: a warning with the chmod to run", () => {
    const path = writeConfig(SEED_CONFIG, "fleetcron.config.json", 0o644);
    const { warnings } = load();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("readable by other users");
    expect(warnings[0]).toContain(`chmod 600 ${path}`);
    expect(warnings.join("\n")).not.toContain("your-secret-key");
  });

  test("every problem at once, naming the file, the key and what is valid; no secret values", () => {
    const path = writeConfig({
      mongodb_uri: "postgres://user:hunter2@db/x",
      tz: "Mars/Olympus",
      max_serial: 0,
      heartbeat_sec: "5",
      log_level: "verbose",
      http_port: 70000,
      secrets: { API_SECRET: 12345678, OK: "fine" },
    });
    const error = configError(() => load());
    expect(error.exitCode).toBe(EXIT_USAGE);
    const lines = error.message.split("\n");
    expect(lines).toHaveLength(7);
    for (const line of lines) expect(line.startsWith(`${path}: `)).toBe(true);
    expect(error.message).toContain('tz: must be an IANA time zone such as "Asia/Seoul"');
    expect(error.message).toContain('(got "Mars/Olympus")');
    expect(error.message).toContain('heartbeat_sec: must be a number greater than 0, at most 3600 seconds (got "5")');
    expect(error.message).toContain('log_level: must be one of "fatal", "error", "warn", "info", "debug", "trace" (got "verbose")');
    expect(error.message).toContain("max_serial: must be an integer 1-1000 (got 0)");
    expect(error.message).toContain("secrets.API_SECRET: must be a string");
    expect(error.message).toContain("mongodb_uri: must be a MongoDB connection string");
    expect(error.message).not.toContain("hunter2");
    expect(error.message).not.toContain("12345678");
  });

  test("timings that would cause double runs are errors", () => {
    writeConfig({ heartbeat_sec: 10, dead_after_sec: 10 });
    expect(configError(() => load()).message).toContain("dead_after_sec: must be greater than heartbeat_sec (10)");
    // Greater, but too short to renew and stop writing before another agent may take over.
    writeConfig({ heartbeat_sec: 5, dead_after_sec: 6 });
    const error = configError(() => load());
    expect(error.message).toContain("dead_after_sec: too short for heartbeat_sec 5");
    expect(error.message).toContain("use at least 6.9");
    writeConfig({ heartbeat_sec: 5, dead_after_sec: 7.2 });
    expect(load().config.dead_after_sec).toBe(7.2);
  });

  test("timing relations are listed with type errors", () => {
    writeConfig({ max_serial: 0, heartbeat_sec: 20 });
    const lines = configError(() => load()).message.split("\n");
    expect(lines.map((l) => l.split(": ")[1])).toEqual(["max_serial", "dead_after_sec"]);
  });

  test("fragile timings are warnings", () => {
    writeConfig({ heartbeat_sec: 10, dead_after_sec: 15, lease_sec: 20 });
    const warnings = load().warnings;
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("leaves room for no missed heartbeat");
    expect(warnings[1]).toContain("lease_sec is obsolete and ignored");
  });

  test("a JSON syntax error names the file, line and column", () => {
    const path = writeConfig('{\n  "tz": "UTC",\n  "max_serial": 10,\n}\n');
    expect(configError(() => load()).message).toBe(`${path}:4:1: invalid JSON: trailing comma before "}"`);
  });

  test("comments are named as the cause", () => {
    const path = writeConfig('{\n  // my config\n  "tz": "UTC"\n}');
    expect(configError(() => load()).message).toBe(`${path}:2:3: invalid JSON: expected a property name in double quotes, found a comment (JSON has no comments)`);
  });

  test("the whole file must be an object", () => {
    const path = writeConfig("[]");
    expect(configError(() => load()).message).toBe(`${path}: must be a JSON object of settings (got an empty array)`);
  });
});

describe("durations in the config are bounded", () => {
  test("a heartbeat, cut-off or history that no timer or date could hold is refused with the ceiling", () => {
    const bad = (raw: Record<string, unknown>) => {
      try {
        validateConfig(raw, "c.json");
        return null;
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(bad({ heartbeat_sec: 1e9 })).toContain("heartbeat_sec: must be a number greater than 0, at most 3600 seconds");
    expect(bad({ history_days: 1e12 })).toContain("history_days: must be a number greater than 0, at most 3660 days");
    expect(bad({ catchup_window_sec: 1e15 })).toContain("catchup_window_sec: must be a number 0 or greater, at most 31622400 seconds (366 days)");
    expect(bad({ shutdown_timeout_sec: 86_400 })).toContain("shutdown_timeout_sec: must be a number greater than 0, at most 3600 seconds");
    expect(bad({ heartbeat_sec: 5, dead_after_sec: 15, history_days: 3660 })).toBeNull();
  });
});
