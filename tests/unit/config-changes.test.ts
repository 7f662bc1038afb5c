import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { appliedConfig, configChanges, describeConfigChanges } from "../../src/config/changes.ts";
import { loadConfig } from "../../src/config/load.ts";

/** reload-config says what it changed and what needs a restart (issue 12, item 7). */
function resolved(file: Record<string, unknown>) {
  const dir = `${tmpdir()}/fleetcron-config-changes-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  const path = `${dir}/config.json`;
  writeFileSync(path, JSON.stringify(file), { mode: 0o600 });
  try {
    return loadConfig({ flag: path, env: { FLEETCRON_HOME: `${dir}/home` }, cwd: dir, version: "test" }).config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("reload-config changes", () => {
  const before = resolved({ tz: "UTC", http_port: 8080, log_level: "info", max_concurrent_runs: 50, secrets: { A: "one", B: "two" }, mongodb_uri: "mongodb://u:hunter2@db.example/" });

  test("each changed key is named, live ones applied, http_port and the store kept until a restart, no secret shown", () => {
    const after = resolved({ tz: "Asia/Seoul", http_port: 9090, log_level: "debug", max_concurrent_runs: 50, secrets: { A: "one", B: "rotated-value", C: "fresh-value" }, mongodb_uri: "mongodb://u:s3cret@db2.example/" });
    const changes = configChanges(before, after);
    expect(changes.map((c) => [c.key, c.applied])).toEqual([
      ["http_port", false],
      ["log_level", true],
      ["mongodb_uri", false],
      ["secrets", true],
      ["tz", true],
    ]);
    const lines = describeConfigChanges(changes);
    expect(lines).toEqual([
      { text: 'reload-config: applied log_level ("info" → "debug"), secrets (2 changed: B, C; values not shown), tz ("UTC" → "Asia/Seoul")', warn: false },
      { text: "reload-config: http_port (8080 → 9090), mongodb_uri (changed; value not shown) need a restart; the running agent keeps the values it started with", warn: true },
    ]);
    const text = JSON.stringify(lines);
    for (const secret of ["hunter2", "s3cret", "rotated-value", "fresh-value", "two"]) expect(text).not.toContain(secret);
    const applied = appliedConfig(before, after);
    expect(applied.http_port).toBe(8080);
    expect(applied.store).toEqual(before.store);
    expect(applied.tz).toBe("Asia/Seoul");
    expect(applied.log_level).toBe("debug");
  });

  test("timing keys need a restart: a running session's fence was derived from them", () => {
    const after = resolved({ tz: "UTC", http_port: 8080, log_level: "info", max_concurrent_runs: 50, secrets: { A: "one", B: "two" }, mongodb_uri: "mongodb://u:hunter2@db.example/", heartbeat_sec: 2, dead_after_sec: 6 });
    expect(configChanges(before, after).map((c) => [c.key, c.applied])).toEqual([
      ["dead_after_sec", false],
      ["heartbeat_sec", false],
    ]);
    expect(appliedConfig(before, after).heartbeat_sec).toBe(5);
  });

  test("nothing changed says so", () => {
    expect(describeConfigChanges(configChanges(before, before))).toEqual([{ text: "reload-config: nothing changed", warn: false }]);
  });
});
