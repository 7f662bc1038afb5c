import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const MAIN = resolve(import.meta.dir, "../../src/main.ts");

/** How the CLI under test is started: from source, or a compiled binary (FLEETCRON_BIN). */
export function cliCommand(): string[] {
  return process.env.FLEETCRON_BIN ? [process.env.FLEETCRON_BIN] : [process.execPath, MAIN];
}

/** A throwaway FLEETCRON_HOME with a config file; several of these make several machines on one host. */
export interface TestHome {
  dir: string;
  home: string;
  configPath: string;
  env: Record<string, string>;
  cleanup(): void;
}

export function makeHome(config: Record<string, unknown>, name = "fleetcron"): TestHome {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const home = join(dir, "home");
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("FLEETCRON_")) env[k] = v;
  Object.assign(env, { FLEETCRON_HOME: home, FLEETCRON_CONFIG: configPath, NO_COLOR: "1" });
  return { dir, home, configPath, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(home: TestHome, args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const proc = Bun.spawn([...cliCommand(), ...args], { env: { ...home.env, ...extraEnv }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

export interface AgentProcess {
  proc: Subprocess;
  logPath: string;
  log(): string;
  /** Resolves when the log contains `text` (or rejects after `timeoutMs`). */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** `prefix` wraps the command (e.g. `faketime -f +2s` for an agent whose clock is off). */
export function startAgent(home: TestHome, label = "agent", extraEnv: Record<string, string> = {}, prefix: string[] = []): AgentProcess {
  const logPath = join(home.dir, `${label}-${Date.now()}.log`);
  const fd = openSync(logPath, "a");
  const proc = Bun.spawn([...prefix, ...cliCommand(), "run"], { env: { ...home.env, ...extraEnv }, stdout: fd, stderr: fd, stdin: "ignore" });
  closeSync(fd);
  const log = () => readFileSync(logPath, "utf8");
  return {
    proc,
    logPath,
    log,
    async waitForLog(text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const content = log();
        if (typeof text === "string" ? content.includes(text) : text.test(content)) return;
        if (proc.exitCode !== null) throw new Error(`agent exited (${proc.exitCode}) before logging ${text}:\n${content}`);
        await Bun.sleep(50);
      }
      throw new Error(`timed out waiting for ${text} in agent log:\n${log()}`);
    },
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      return proc.exited;
    },
  };
}

/** Waits until `check` returns true, polling; for conditions reached by real processes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
