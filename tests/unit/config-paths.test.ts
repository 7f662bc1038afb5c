import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findConfigPath, resolveHome } from "../../src/config/paths.ts";
import { ConfigError } from "../../src/core/errors.ts";

let dir: string;
let cwd: string;
let userHome: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetcron-paths-"));
  cwd = join(dir, "work");
  userHome = join(dir, "user");
  mkdirSync(cwd);
  mkdirSync(join(userHome, ".fleetcron"), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const touch = (path: string) => (writeFileSync(path, "{}"), path);

describe("resolveHome", () => {
  test("$FLEETCRON_HOME, else ~/.fleetcron", () => {
    expect(resolveHome({ HOME: userHome })).toBe(join(userHome, ".fleetcron"));
    expect(resolveHome({ HOME: userHome, FLEETCRON_HOME: join(dir, "h") })).toBe(join(dir, "h"));
    expect(resolveHome({ FLEETCRON_HOME: "rel" }, cwd)).toBe(join(cwd, "rel"));
  });
});

describe("findConfigPath search order", () => {
  test("--config, then $FLEETCRON_CONFIG, then ./fleetcron.config.json, then <home>/config.json", () => {
    const flag = touch(join(dir, "flag.json"));
    const fromEnv = touch(join(dir, "env.json"));
    const local = touch(join(cwd, "fleetcron.config.json"));
    const inHome = touch(join(userHome, ".fleetcron", "config.json"));
    const env = { HOME: userHome, FLEETCRON_CONFIG: fromEnv };
    expect(findConfigPath({ flag, env, cwd })).toBe(flag);
    expect(findConfigPath({ env, cwd })).toBe(fromEnv);
    expect(findConfigPath({ env: { HOME: userHome }, cwd })).toBe(local);
    rmSync(local);
    expect(findConfigPath({ env: { HOME: userHome }, cwd })).toBe(inHome);
    rmSync(inHome);
    expect(findConfigPath({ env: { HOME: userHome }, cwd })).toBeNull();
  });

  test("$FLEETCRON_HOME moves the home config", () => {
    const home = join(dir, "agent2");
    mkdirSync(home);
    const inHome = touch(join(home, "config.json"));
    expect(findConfigPath({ env: { HOME: userHome, FLEETCRON_HOME: home }, cwd })).toBe(inHome);
  });

  test("an explicit path that does not exist is a ConfigError naming it and its source", () => {
    expect(() => findConfigPath({ flag: "nope.json", env: {}, cwd })).toThrow(ConfigError);
    expect(() => findConfigPath({ flag: "nope.json", env: {}, cwd })).toThrow(`${join(cwd, "nope.json")} (from --config) does not exist`);
    expect(() => findConfigPath({ env: { FLEETCRON_CONFIG: join(dir, "x.json") }, cwd })).toThrow("(from $FLEETCRON_CONFIG) does not exist");
    expect(() => findConfigPath({ flag: dir, env: {}, cwd })).toThrow("is a folder");
  });
});
