import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliCommand, makeHome } from "../support/cli.ts";

/**
 * The host's files through the CLI (README, "Security"): `run` refuses an unsafe home with exit 2
 * and the fix; `./fleetcron.config.json` of another user is ignored and said so; `config init`
 * writes 0600 always and never through a link.
 */

const root = mkdtempSync(join(tmpdir(), "fleetcron-hostfiles-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
let n = 0;

async function cli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("FLEETCRON_")) env[k] = v;
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v === undefined) delete env[k];
  else env[k] = v;
  const proc = Bun.spawn([...cliCommand(), ...args], { cwd: opts.cwd ?? root, env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, exitCode };
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe("run refuses an unsafe home", () => {
  test("a home writable by all users: exit 2, saying what to chmod; nothing is opened in it", async () => {
    const home = makeHome({ heartbeat_sec: 1 });
    try {
      mkdirSync(home.home);
      chmodSync(home.home, 0o777);
      const result = await cli(["run"], { env: home.env });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`chmod 700 ${home.home}`);
      expect(existsSync(join(home.home, "fleetcron.db"))).toBe(false);
    } finally {
      home.cleanup();
    }
  }, 20_000);
});

describe("config lookup in the working folder", () => {
  test.skipIf(!isRoot)(`another user's ./fleetcron.config.json is ignored with a warning${isRoot ? "" : " — SKIPPED, needs root to chown"}`, async () => {
    const cwd = join(root, `cwd-${++n}`);
    mkdirSync(cwd);
    const planted = join(cwd, "fleetcron.config.json");
    writeFileSync(planted, JSON.stringify({ secrets: { PLANTED: "by-nobody" } }), { mode: 0o644 });
    chownSync(planted, 65534, 65534);
    const result = await cli(["config", "check", "--json"], { cwd, env: { HOME: join(root, `user-${n}`), FLEETCRON_HOME: join(root, `home-${n}`) } });
    expect(result.stderr).toContain(`${planted} ignored: it is owned by uid 65534`);
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.config).toBeNull();
    expect(report.secrets).toEqual([]);
  }, 20_000);

  test("a world-writable ./fleetcron.config.json is refused: exit 2 with the chmod", async () => {
    const cwd = join(root, `cwd-${++n}`);
    mkdirSync(cwd);
    const local = join(cwd, "fleetcron.config.json");
    writeFileSync(local, "{}");
    chmodSync(local, 0o666);
    const result = await cli(["config", "check"], { cwd, env: { HOME: join(root, `user-${n}`), FLEETCRON_HOME: join(root, `home-${n}`) } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${local}`);
  }, 20_000);
});

describe("config init", () => {
  test("writes mode 600, and with --force an existing 0644 file becomes 0600", async () => {
    const path = join(root, `init-${++n}.json`);
    expect((await cli(["config", "init", path])).exitCode).toBe(0);
    expect(mode(path)).toBe("600");
    writeFileSync(path, "{}");
    chmodSync(path, 0o644);
    const again = await cli(["config", "init", path]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain("already exists; pass --force");
    expect((await cli(["config", "init", "--force", path])).exitCode).toBe(0);
    expect(mode(path)).toBe("600");
    expect(JSON.parse(readFileSync(path, "utf8")).secrets).toBeDefined();
  }, 20_000);

  test("a dangling link at the path: refused, nothing created where it points", async () => {
    const path = join(root, `init-${++n}.json`);
    const target = join(root, `planted-target-${n}.json`);
    symlinkSync(target, path);
    const result = await cli(["config", "init", path]);
    expect(result.exitCode).toBe(1);
    expect(existsSync(target)).toBe(false);
  }, 20_000);

  test("--force over a link replaces the link, never writes the file it points to", async () => {
    const path = join(root, `init-${++n}.json`);
    const victim = join(root, `victim-${n}`);
    writeFileSync(victim, "root's file\n", { mode: 0o644 });
    symlinkSync(victim, path);
    expect((await cli(["config", "init", "--force", path])).exitCode).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("root's file\n");
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(mode(path)).toBe("600");
  }, 20_000);
});

describe("store credentials are shown masked", () => {
  test("config check with a password holding an unescaped / ? @: neither stderr nor stdout shows any of it", async () => {
    const home = makeHome({ mongodb_uri: "mongodb://fleet:Zr8/wq?Lm@Np3@127.0.0.1:1/fleet?tlsCertificateKeyFilePassword=Vb6kQ2&serverSelectionTimeoutMS=300" });
    try {
      const result = await cli(["config", "check"], { env: home.env });
      expect(result.exitCode).not.toBe(0);
      const shown = result.stdout + result.stderr;
      expect(shown).toContain("mongodb://fleet:***@127.0.0.1:1/fleet?tlsCertificateKeyFilePassword=***");
      for (const piece of ["Zr8", "wq?Lm", "Np3", "Vb6kQ2"]) expect(shown).not.toContain(piece);
    } finally {
      home.cleanup();
    }
  }, 30_000);
});
