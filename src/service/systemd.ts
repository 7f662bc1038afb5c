/** Linux: a systemd unit, system-wide (/etc/systemd/system) or per user (~/.config/systemd/user). */
import { posix } from "node:path";
import { UsageError } from "../core/errors.ts";
import { agentArgv, checkInput, RESTART_DELAY_SEC, SERVICE_NAME, shellQuote, stopTimeoutSec, type ServiceGenerator, type ServiceInput, type Step } from "./shared.ts";

export const UNIT_NAME = `${SERVICE_NAME}.service`;
export const SYSTEM_UNIT_DIR = "/etc/systemd/system";

/**
 * One word of a unit's command line. Words with anything beyond a safe set are double-quoted with
 * C-style escapes; `%` (specifiers, the whole line) is doubled, and so is `$` in the arguments
 * (variable expansion happens there, not in the program path, as `systemd-analyze verify` shows),
 * so a path such as `/opt/my apps/50%/fleetcron` reaches the agent as written.
 */
export function systemdWord(arg: string, position: "program" | "argument" = "argument"): string {
  const specifiersEscaped = arg.replaceAll("%", "%%");
  const literal = position === "argument" ? specifiersEscaped.replaceAll("$", "$$$$") : specifiersEscaped;
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return literal;
  return `"${literal.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** `Environment="NAME=value"`: quoted, `%` doubled (no `$` expansion happens in Environment=). */
export function systemdEnvironment(name: string, value: string): string {
  return `"${`${name}=${value}`.replaceAll("%", "%%").replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function unitDir(input: ServiceInput): string {
  return input.scope === "system" ? SYSTEM_UNIT_DIR : posix.join(input.xdgConfigHome ?? posix.join(input.userHome, ".config"), "systemd", "user");
}

function systemctl(input: ServiceInput, ...args: string[]): string[] {
  return ["systemctl", ...(input.scope === "user" ? ["--user"] : []), ...args];
}

function check(input: ServiceInput): void {
  checkInput(input, "linux");
  if (input.user !== undefined) {
    if (input.scope === "user") throw new UsageError("--run-as needs a system-wide unit (a --user unit always runs as you); drop --user, or drop --run-as");
    if (!/^[a-z_][a-z0-9_.-]*\$?$/i.test(input.user)) throw new UsageError(`--run-as "${input.user}" is not a valid Linux user name`);
  }
}

export function systemdUnit(input: ServiceInput): string {
  check(input);
  const system = input.scope === "system";
  return [
    "# Written by `fleetcron service install`; run it again to change this file,",
    "# `fleetcron service uninstall` to remove it.",
    "[Unit]",
    "Description=FleetCron agent (distributed cron for HTTP jobs)",
    ...(system
      ? ["After=network-online.target", "Wants=network-online.target"]
      : ["# (network-online.target belongs to the system manager; a user unit cannot wait for it."]
          .concat(["#  The agent retries its store with backoff, so starting before the network is harmless.)"])),
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${agentArgv(input).map((word, i) => systemdWord(word, i === 0 ? "program" : "argument")).join(" ")}`,
    `Environment=${systemdEnvironment("FLEETCRON_HOME", input.home)}`,
    ...(input.user !== undefined ? [`User=${input.user}`] : []),
    "Restart=always",
    `RestartSec=${RESTART_DELAY_SEC}`,
    // SIGTERM: the agent stops claiming, lets running work finish (shutdown_timeout_sec), hands over its serial.
    "KillSignal=SIGTERM",
    `TimeoutStopSec=${stopTimeoutSec(input)}`,
    "",
    "[Install]",
    `WantedBy=${system ? "multi-user.target" : "default.target"}`,
    "",
  ].join("\n");
}

export const systemd: ServiceGenerator = {
  platform: "linux",
  defaultScope: "system",
  manager: "systemd",
  definition(input) {
    return { path: posix.join(unitDir(input), UNIT_NAME), content: systemdUnit(input), encoding: "utf8", mode: 0o644 };
  },
  install(input, state) {
    const file = this.definition(input);
    const steps: Step[] = [];
    if (input.scope === "user") steps.push({ kind: "mkdir", path: unitDir(input), mode: 0o755 });
    if (!state.homeExists) {
      steps.push({ kind: "mkdir", path: input.home, mode: 0o700 });
      if (input.user !== undefined) steps.push({ kind: "run", command: { argv: ["chown", `${input.user}:`, input.home] }, why: `the agent runs as ${input.user} and writes its home` });
    }
    steps.push(
      { kind: "write", file },
      { kind: "run", command: { argv: systemctl(input, "daemon-reload") }, why: "read the new unit" },
      { kind: "run", command: { argv: systemctl(input, "enable", "--now", UNIT_NAME) }, why: "start at boot, and now" },
    );
    if (state.replacing) steps.push({ kind: "run", command: { argv: systemctl(input, "try-restart", UNIT_NAME) }, why: "a running agent restarts with the new unit (it hands over its serial first)" });
    return steps;
  },
  uninstall(input) {
    return [
      { kind: "run", command: { argv: systemctl(input, "disable", "--now", UNIT_NAME), ignoreFailure: true }, why: "stop the agent (it finishes running work) and drop it from boot" },
      { kind: "remove", path: this.definition(input).path },
      { kind: "run", command: { argv: systemctl(input, "daemon-reload") }, why: "forget the unit" },
      { kind: "run", command: { argv: systemctl(input, "reset-failed", UNIT_NAME), ignoreFailure: true }, why: "clear a remembered failed state" },
    ];
  },
  status(input) {
    return {
      file: this.definition(input).path,
      runningCommand: { argv: systemctl(input, "is-active", UNIT_NAME) },
      parseRunning({ exitCode, stdout }) {
        const state = stdout.trim() || "unknown";
        return { running: exitCode === 0 && state === "active", detail: state };
      },
    };
  },
  logs(input) {
    const journal = input.scope === "system" ? `journalctl -u ${SERVICE_NAME} -f` : `journalctl --user -u ${SERVICE_NAME} -f`;
    // The journal rotates on its own, so a unit needs no log file; the config may still name one.
    return input.logFile ? `${input.logFile} (tail -F ${shellQuote(input.logFile)}; startup errors: ${journal})` : `the journal: ${journal}`;
  },
  notes(input) {
    if (input.scope === "user") return ["a --user service runs while you are logged in; to keep it running after logout and start it at boot: loginctl enable-linger"];
    return input.user === undefined ? ["the agent runs as root; --run-as USER runs it as a dedicated user (create one with: useradd --system --home-dir /var/lib/fleetcron --shell /usr/sbin/nologin fleetcron)"] : [];
  },
};
