import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { executeSteps, serviceStatus, type RunResult, type Runner } from "../../src/service/apply.ts";
import { GENERATORS, type ServiceInput } from "../../src/service/index.ts";
import { MAIN, makeHome, runCli, type TestHome } from "../support/cli.ts";

/** `fleetcron service`: previews change nothing on disk; the executor does the steps in order and undoes a half install. */
let t: TestHome;
let env: Record<string, string>;

/** Every path under the test folder, with size and mode: any file written or folder created shows up. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = statSync(path);
      out.push(`${path} ${st.isDirectory() ? "dir" : st.size} ${st.mode.toString(8)}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

const SYSTEM_PATHS = ["/etc/systemd/system/fleetcron.service", "/Library/LaunchDaemons/com.fleetcron.agent.plist"];

beforeAll(() => {
  t = makeHome({ shutdown_timeout_sec: 20 }, "fleetcron service-cli");
  const user = join(t.dir, "user");
  mkdirSync(user);
  // Bun keeps a transpiler cache under $HOME when running from source; that is Bun's write, not ours.
  env = { HOME: user, USERPROFILE: user, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" };
  delete t.env.XDG_CONFIG_HOME;
});
afterAll(() => t.cleanup());

describe("service --dry-run and --platform previews", () => {
  const previews = [
    ["install", "--dry-run"],
    ["install", "--dry-run", "--user"],
    ["install", "--dry-run", "--run-as", "nobody", "--binary", "/usr/local/bin/fleetcron"],
    ["install", "--platform", "darwin"],
    ["install", "--platform", "darwin", "--system"],
    ["install", "--platform", "windows"],
    ["install", "--platform", "windows", "--user", "--run-as", "CORP\\ops"],
    ["uninstall", "--dry-run"],
    ["uninstall", "--dry-run", "--user"],
    ["uninstall", "--platform", "windows"],
  ];

  test("print the definition and the steps, and change nothing on disk", async () => {
    const before = snapshot(t.dir);
    const systemBefore = SYSTEM_PATHS.map(existsSync);
    for (const args of previews) {
      const result = await runCli(t, ["service", ...args], env);
      expect({ args, exitCode: result.exitCode, stderr: result.stderr }).toEqual({ args, exitCode: 0, stderr: "" });
      expect(result.stdout).toStartWith("dry run: nothing is written and nothing is run");
    }
    expect(snapshot(t.dir)).toEqual(before);
    expect(existsSync(t.home)).toBe(false);
    expect(SYSTEM_PATHS.map(existsSync)).toEqual(systemBefore);
  }, 30_000);

  test("the preview holds the absolute config path, FLEETCRON_HOME, and a stop timeout above shutdown_timeout_sec", async () => {
    const result = await runCli(t, ["service", "install", "--dry-run", "--user", "--json"], env);
    expect(result.exitCode).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.dry_run).toBe(true);
    expect(plan.file.path).toBe(join(env.HOME!, ".config/systemd/user/fleetcron.service"));
    expect(plan.file.content).toContain(`--config "${t.configPath}" run`); // the test folder's name has a space
    expect(plan.file.content).toContain(`Environment="FLEETCRON_HOME=${t.home}"`);
    expect(plan.file.content).toContain("TimeoutStopSec=35");
    expect(plan.steps.map((s: { text: string }) => s.text.split("   #")[0])).toEqual([
      `mkdir -p -m 755 '${join(env.HOME!, ".config/systemd/user")}'`,
      `mkdir -p -m 700 '${t.home}'`,
      `write '${join(env.HOME!, ".config/systemd/user/fleetcron.service")}' (mode 644, UTF-8)`,
      "systemctl --user daemon-reload",
      "systemctl --user enable --now fleetcron.service",
    ]);
  }, 15_000);

  test("the macOS preview writes a plist with logs under FLEETCRON_HOME/logs", async () => {
    const result = await runCli(t, ["service", "install", "--platform", "darwin", "--json"], env);
    const plan = JSON.parse(result.stdout);
    expect(plan.file.path).toBe(join(env.HOME!, "Library/LaunchAgents/com.fleetcron.agent.plist"));
    expect(plan.file.content).toContain(`<string>${join(t.home, "logs", "fleetcron.log")}</string>`);
    expect(plan.file.content).toContain(`<string>${t.configPath}</string>`);
  }, 15_000);

  test("bad usage exits 2: unknown platform, --user with --system, status of another OS", async () => {
    for (const args of [
      ["install", "--platform", "bsd"],
      ["install", "--dry-run", "--user", "--system"],
      ["install", "--dry-run", "--user", "--run-as", "nobody"],
      ["status", "--platform", "windows"],
    ]) {
      const result = await runCli(t, ["service", ...args], env);
      expect({ args, exitCode: result.exitCode }).toEqual({ args, exitCode: 2 });
      expect(result.stderr).toStartWith("error: ");
    }
  }, 20_000);

  test("install from source (bun src/main.ts) without --binary is refused, says why, and writes nothing", async () => {
    const before = snapshot(t.dir);
    // Always from source here: with a compiled FLEETCRON_BIN this would be a real install.
    const proc = Bun.spawnSync([process.execPath, MAIN, "service", "install", "--user"], { env: { ...t.env, ...env }, stdout: "pipe", stderr: "pipe" });
    expect(proc.exitCode).toBe(2);
    expect(proc.stderr.toString()).toContain("a service must point at a stable binary");
    expect(proc.stderr.toString()).toContain("--binary");
    expect(snapshot(t.dir)).toEqual(before);
  }, 15_000);
});

describe("executor (with a stand-in for systemctl)", () => {
  function recorder(fail?: { argv: string; result: RunResult }) {
    const calls: string[] = [];
    const runner: Runner = (argv) => {
      calls.push(argv.join(" "));
      if (fail && argv.join(" ") === fail.argv) return fail.result;
      return { exitCode: 0, stdout: argv.includes("is-active") ? "active\n" : "", stderr: "" };
    };
    return { calls, runner };
  }

  function userInput(name: string): ServiceInput {
    const root = join(t.dir, name);
    return { binaryPath: "/usr/local/bin/fleetcron", configPath: t.configPath, home: join(root, "home"), scope: "user", userHome: root, xdgConfigHome: join(root, "xdg") };
  }

  test("install writes the unit (mode 644) and runs the commands in order; status and uninstall follow", () => {
    const input = userInput("ok");
    const gen = GENERATORS.linux;
    const { calls, runner } = recorder();
    executeSteps(gen, gen.install(input, { replacing: false, homeExists: false }), runner);
    const unit = join(input.xdgConfigHome!, "systemd/user/fleetcron.service");
    expect(statSync(unit).mode & 0o777).toBe(0o644);
    expect(statSync(input.home).isDirectory()).toBe(true);
    expect(calls).toEqual(["systemctl --user daemon-reload", "systemctl --user enable --now fleetcron.service"]);
    expect(serviceStatus(gen, input, runner)).toMatchObject({ installed: true, running: true, state: "active", definition: unit });
    executeSteps(gen, gen.uninstall(input), runner);
    expect(existsSync(unit)).toBe(false);
    expect(existsSync(input.home)).toBe(true); // the data stays
    expect(serviceStatus(gen, input, runner)).toMatchObject({ installed: false, running: false });
  });

  test("launchd status reads the log path from the installed plist, not from this shell's FLEETCRON_HOME", () => {
    const input = { ...userInput("launchd"), home: join(t.dir, "launchd", "home & logs") };
    const gen = GENERATORS.darwin;
    const { runner } = recorder();
    executeSteps(gen, gen.install(input, { replacing: false, homeExists: false }), runner);
    const elsewhere = { ...input, home: join(t.dir, "another home") };
    expect(serviceStatus(gen, elsewhere, runner).logs).toStartWith(join(input.home, "logs", "fleetcron.log"));
  });

  test("a failing command stops the install, removes the unit it wrote, and says what to do", () => {
    const input = userInput("fail");
    const gen = GENERATORS.linux;
    const { runner } = recorder({ argv: "systemctl --user enable --now fleetcron.service", result: { exitCode: 1, stdout: "", stderr: "Interactive authentication required." } });
    expect(() => executeSteps(gen, gen.install(input, { replacing: false, homeExists: true }), runner)).toThrow(
      /`systemctl --user enable --now fleetcron.service` failed \(exit 1\): Interactive authentication required\.\nrun it again with sudo[\s\S]*removed again: /,
    );
    expect(existsSync(join(input.xdgConfigHome!, "systemd/user/fleetcron.service"))).toBe(false);
  });

  test("steps allowed to fail (stopping a unit that is not loaded) do not stop an uninstall", () => {
    const input = userInput("lenient");
    const gen = GENERATORS.linux;
    const { calls, runner } = recorder({ argv: "systemctl --user disable --now fleetcron.service", result: { exitCode: 1, stdout: "", stderr: "not loaded" } });
    const outcomes = executeSteps(gen, gen.uninstall(input), runner);
    expect(outcomes[0]!.ok).toBe(false);
    expect(calls).toContain("systemctl --user daemon-reload");
  });
});
