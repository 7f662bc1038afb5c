import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { eventually } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * `service install --user`, `status`, a restart after SIGKILL (the unit's Restart=always) and
 * `uninstall`, against a real systemd: a user manager (`systemd --user`) with its own
 * XDG_RUNTIME_DIR and XDG_CONFIG_HOME.
 *
 * A bare `systemd --user` here exits 1 at once, writing only to /dev/console: "Trying to run as
 * user instance, but the system has not been booted with systemd." It checks for
 * /run/systemd/system, which a machine booted without systemd lacks. Creating that folder for the
 * whole machine would tell every other program that systemd is PID 1, so the manager runs in a
 * mount namespace of its own (`unshare -m`, root needed) where a tmpfs over /run/systemd holds it;
 * every command of the test enters that namespace with `nsenter`. The agent is this checkout, run
 * by bun through a small launcher script (a service needs --binary when running from source).
 */
const ROOT = resolve(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/main.ts");
const SYSTEMD = ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"].find((p) => existsSync(p));

function prerequisites(): string {
  if (process.platform !== "linux") return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return "not root: `unshare -m` (a mount namespace for the user manager) needs CAP_SYS_ADMIN";
  const missing = [SYSTEMD ? null : "systemd (/usr/lib/systemd/systemd)", Bun.which("systemctl") ? null : "systemctl", Bun.which("unshare") ? null : "unshare", Bun.which("nsenter") ? null : "nsenter"].filter(Boolean);
  return missing.length ? `${missing.join(", ")} not installed (.ci/run installs them)` : "";
}

let skipReason = prerequisites();
if (skipReason && process.env.CI && !skipReason.startsWith("not ")) throw new Error(`the systemd check must run in CI, but ${skipReason}`);

let work = "";
let manager: Subprocess<"ignore", "pipe", "pipe"> | null = null;
let env: Record<string, string> = {};
let sink: Sink | null = null;
let managerLog = "";

function inNamespace(argv: string[], timeoutMs = 30_000) {
  const result = Bun.spawnSync(["nsenter", "-t", String(manager!.pid), "-m", "--", ...argv], { env, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: timeoutMs });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}
const fleetcron = (...args: string[]) => inNamespace([process.execPath, MAIN, ...args]);
/**
 * For a command that stops the agent: spawnSync would block this process, and with it the sink the
 * agent may be sending to at that moment, so the agent's stop would wait for a request the sink
 * cannot answer (its shutdown_timeout_sec) and the command would time out.
 */
async function fleetcronAsync(...args: string[]) {
  const proc = Bun.spawn(["nsenter", "-t", String(manager!.pid), "-m", "--", process.execPath, MAIN, ...args], { env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}
const systemctl = (...args: string[]) => inNamespace(["systemctl", "--user", ...args]);
const mainPid = () => Number(systemctl("show", "-p", "MainPID", "--value", "fleetcron.service").stdout.trim() || 0);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

if (!skipReason) {
  work = mkdtempSync(join(tmpdir(), "fleetcron-systemd-"));
  const runtimeDir = join(work, "xdg-runtime");
  mkdirSync(runtimeDir, { mode: 0o700 });
  env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(work, "user"),
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: join(work, "xdg-config"),
    FLEETCRON_HOME: join(work, "home"),
    FLEETCRON_CONFIG: join(work, "config.json"),
    NO_COLOR: "1",
  };
  // A tmpfs over /run/systemd, in this namespace only, holds the system/ folder the manager looks for.
  const over = existsSync("/run/systemd") ? "/run/systemd" : "/run";
  manager = Bun.spawn(["unshare", "-m", "--propagation", "private", "sh", "-c", `mount -t tmpfs tmpfs ${over} && mkdir -p /run/systemd/system && exec ${SYSTEMD} --user --log-target=console`], {
    env,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const deadline = Date.now() + 20_000;
  let state = "";
  while (Date.now() < deadline && manager.exitCode === null) {
    await Bun.sleep(200);
    state = existsSync(join(runtimeDir, "systemd", "private")) ? systemctl("is-system-running").stdout.trim() : "";
    if (state === "running" || state === "degraded") break;
  }
  if (state !== "running" && state !== "degraded") {
    manager.kill("SIGKILL");
    await manager.exited;
    const printed = `${await new Response(manager.stdout).text()}${await new Response(manager.stderr).text()}`.trim();
    skipReason = `systemd --user did not come up (exit ${manager.exitCode}, state "${state}")${printed ? `: ${printed.slice(0, 500)}` : ""}`;
    manager = null;
  }
}
if (skipReason) console.warn(`SKIPPING the real systemd check: ${skipReason}`);

beforeAll(() => {
  if (skipReason) return;
  sink = startSink();
  writeFileSync(env.FLEETCRON_CONFIG!, JSON.stringify({ log_file: join(work, "agent-logs", "fleetcron.log"), heartbeat_sec: 1, dead_after_sec: 3 }), { mode: 0o600 });
  const launcher = join(work, "fleetcron");
  writeFileSync(launcher, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} "$@"\n`);
  chmodSync(launcher, 0o755);
});

afterAll(async () => {
  if (!manager) return;
  const pid = mainPid();
  systemctl("stop", "fleetcron.service");
  manager.kill("SIGTERM");
  const exited = await Promise.race([manager.exited.then(() => true), Bun.sleep(10_000).then(() => false)]);
  if (!exited) manager.kill("SIGKILL");
  managerLog = `${await new Response(manager.stdout).text()}${await new Response(manager.stderr).text()}`;
  if (pid && alive(pid)) process.kill(pid, "SIGKILL");
  await sink?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(Boolean(skipReason))(`real systemd (a user manager)${skipReason ? ` — SKIPPED: ${skipReason}` : ""}`, () => {
  let firstPid = 0;

  test("service install --user writes the unit, enables and starts it; the agent delivers", async () => {
    const jobs = join(work, "jobs.json");
    writeFileSync(jobs, JSON.stringify([{ name: "Systemd tick", every: "1s", url: `${sink!.url}/systemd` }]));
    const applied = fleetcron("jobs", "apply", jobs);
    expect({ code: applied.exitCode, err: applied.stderr }).toEqual({ code: 0, err: "" });

    const installed = fleetcron("service", "install", "--user", "--binary", join(work, "fleetcron"), "--json");
    expect({ code: installed.exitCode, err: installed.stderr }).toEqual({ code: 0, err: "" });
    const plan = JSON.parse(installed.stdout);
    console.log(`service install --user: ${plan.done.map((d: { step: string; ok: boolean }) => `${d.ok ? "ok" : "skip"} ${d.step.split("   #")[0]}`).join("; ")}; running=${plan.status.running} (${plan.status.state})`);
    expect(plan.file.path).toBe(join(env.XDG_CONFIG_HOME!, "systemd", "user", "fleetcron.service"));
    expect(existsSync(plan.file.path)).toBe(true);
    expect(systemctl("is-enabled", "fleetcron.service").stdout.trim()).toBe("enabled");
    await eventually(() => sink!.deliveries.filter((d) => d.path === "/systemd").length >= 2, 30_000, "2 deliveries from the agent systemd started");
    firstPid = mainPid();
    expect(firstPid).toBeGreaterThan(0);
  }, 60_000);

  test("service status: installed, running (active), and the log is the config's log_file", () => {
    const status = fleetcron("service", "status", "--user", "--json");
    expect(status.exitCode).toBe(0);
    const [service] = JSON.parse(status.stdout).services;
    console.log(`service status --user: ${JSON.stringify(service)}`);
    expect(service).toMatchObject({ manager: "systemd", scope: "user", installed: true, running: true, state: "active" });
    expect(service.logs).toStartWith(join(work, "agent-logs", "fleetcron.log"));
    const logFile = join(work, "agent-logs", "fleetcron.log");
    expect((statSync(logFile).mode & 0o777).toString(8)).toBe("600");
    expect(readFileSync(logFile, "utf8")).toContain("info");
  });

  test("SIGKILL the agent: Restart=always starts a new one (RestartSec=10) that delivers again", async () => {
    process.kill(firstPid, "SIGKILL");
    await eventually(() => !alive(firstPid), 5_000, `pid ${firstPid} to die`);
    const killedAt = Date.now();
    await eventually(() => {
      const pid = mainPid();
      return pid > 0 && pid !== firstPid && systemctl("is-active", "fleetcron.service").stdout.trim() === "active";
    }, 30_000, "systemd to restart the agent");
    const restartedAfter = Date.now() - killedAt;
    const before = sink!.deliveries.filter((d) => d.path === "/systemd").length;
    await eventually(() => sink!.deliveries.filter((d) => d.path === "/systemd").length >= before + 2, 30_000, "deliveries from the restarted agent");
    const restarts = systemctl("show", "-p", "NRestarts", "--value", "fleetcron.service").stdout.trim();
    console.log(`SIGKILL pid ${firstPid}: restarted as pid ${mainPid()} after ${restartedAfter} ms, NRestarts=${restarts}`);
    expect(restarts).toBe("1");
    expect(restartedAfter).toBeGreaterThanOrEqual(8_000); // RestartSec=10, not a tight loop
  }, 90_000);

  test("service uninstall --user stops the agent and removes the unit", async () => {
    const pid = mainPid();
    expect(pid).toBeGreaterThan(0); // (kill(0) would probe our own process group)
    const removed = await fleetcronAsync("service", "uninstall", "--user", "--json");
    expect({ code: removed.exitCode, err: removed.stderr }).toEqual({ code: 0, err: "" });
    expect(existsSync(join(env.XDG_CONFIG_HOME!, "systemd", "user", "fleetcron.service"))).toBe(false);
    await eventually(() => !alive(pid), 10_000, `the agent (pid ${pid}) to stop`);
    expect(systemctl("is-active", "fleetcron.service").stdout.trim()).not.toBe("active");
    const status = JSON.parse(fleetcron("service", "status", "--user", "--json").stdout).services[0];
    console.log(`after uninstall: ${JSON.stringify(status)}`);
    expect(status).toMatchObject({ installed: false, running: false, state: "not installed" });
  }, 30_000);
});
