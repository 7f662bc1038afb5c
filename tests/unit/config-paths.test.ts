import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

describe("./fleetcron.config.json is used only when no other user could have written it (README, \"Security\")", () => {
  const isRoot = process.getuid?.() === 0;
  const NOBODY = 65534;

  test.skipIf(!isRoot)(`another user's file in the working folder is ignored, and a warning says why${isRoot ? "" : " — SKIPPED, needs root to chown"}`, () => {
    const local = touch(join(cwd, "fleetcron.config.json"));
    chownSync(local, NOBODY, NOBODY);
    const inHome = touch(join(userHome, ".fleetcron", "config.json"));
    const warnings: string[] = [];
    expect(findConfigPath({ env: { HOME: userHome }, cwd, warnings })).toBe(inHome);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${local} ignored: it is owned by uid ${NOBODY}, not by you`);
    expect(warnings[0]).toContain(`pass --config ${local}`);
  });

  test.skipIf(!isRoot)(`a link of another user's to this user's file is ignored too${isRoot ? "" : " — SKIPPED, needs root to chown"}`, () => {
    const mine = touch(join(dir, "mine.json"));
    const local = join(cwd, "fleetcron.config.json");
    symlinkSync(mine, local);
    lchownSync(local, NOBODY, NOBODY);
    const warnings: string[] = [];
    expect(findConfigPath({ env: { HOME: userHome }, cwd, warnings })).toBeNull();
    expect(warnings[0]).toContain("it is a link owned by uid");
  });

  test("a file writable by others is refused with the chmod to run, wherever it comes from", () => {
    const local = touch(join(cwd, "fleetcron.config.json"));
    chmodSync(local, 0o666);
    expect(() => findConfigPath({ env: { HOME: userHome }, cwd })).toThrow(ConfigError);
    expect(() => findConfigPath({ env: { HOME: userHome }, cwd })).toThrow(`writable by all users (mode 666)`);
    expect(() => findConfigPath({ env: { HOME: userHome }, cwd })).toThrow(`chmod 600 ${local}`);
    chmodSync(local, 0o620);
    expect(() => findConfigPath({ flag: local, env: {}, cwd })).toThrow("writable by its group (mode 620)");
    chmodSync(local, 0o600);
    expect(findConfigPath({ env: { HOME: userHome }, cwd })).toBe(local);
  });

  test("this user's own file is used with no warning", () => {
    const local = touch(join(cwd, "fleetcron.config.json"));
    const warnings: string[] = [];
    expect(findConfigPath({ env: { HOME: userHome }, cwd, warnings })).toBe(local);
    expect(warnings).toEqual([]);
  });
});

describe("<home>/config.json follows the home's rules", () => {
  test("a link there is refused (exit 2), as is a home others may write", () => {
    const home = join(dir, "h-link");
    mkdirSync(home, { mode: 0o700 });
    const elsewhere = touch(join(dir, "elsewhere.json"));
    symlinkSync(elsewhere, join(home, "config.json"));
    expect(() => findConfigPath({ env: { HOME: userHome, FLEETCRON_HOME: home }, cwd })).toThrow("is a symbolic link");
    const open = join(dir, "h-open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    touch(join(open, "config.json"));
    expect(() => findConfigPath({ env: { HOME: userHome, FLEETCRON_HOME: open }, cwd })).toThrow("writable by all users");
  });

  test.skipIf(process.getuid?.() !== 0)(`another user's config.json in the home is refused${process.getuid?.() === 0 ? "" : " — SKIPPED, needs root to chown"}`, () => {
    const home = join(dir, "h-foreign");
    mkdirSync(home, { mode: 0o700 });
    const planted = touch(join(home, "config.json"));
    chownSync(planted, 65534, 65534);
    expect(() => findConfigPath({ env: { HOME: userHome, FLEETCRON_HOME: home }, cwd })).toThrow("owned by uid 65534");
  });
});
