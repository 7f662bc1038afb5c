/** macOS: a launchd property list, a LaunchAgent of the user (default) or a LaunchDaemon (--system). */
import { posix } from "node:path";
import { UsageError } from "../core/errors.ts";
import { agentArgv, checkInput, LAUNCHD_LABEL, logFileFromArgv, RESTART_DELAY_SEC, serviceLogFile, shellQuote, stopTimeoutSec, xmlEscape, xmlUnescape, type ServiceGenerator, type ServiceInput, type Step } from "./shared.ts";

export const SYSTEM_DAEMON_DIR = "/Library/LaunchDaemons";

export function plistDir(input: ServiceInput): string {
  return input.scope === "system" ? SYSTEM_DAEMON_DIR : posix.join(input.userHome, "Library", "LaunchAgents");
}

/** The agent's own, rotated log (`--log-file`, or the config's `log_file`). */
export function logPath(input: ServiceInput): string {
  return serviceLogFile(input).path;
}

/**
 * What the agent writes outside its logger — an error before the config is read, a crash — goes
 * to launchd's StandardErrorPath. launchd never rotates it, so it is a file of its own that only
 * such lines reach, not the log.
 */
export function crashLogPath(input: ServiceInput): string {
  return posix.join(input.home, "logs", "launchd-stderr.log");
}

/** `gui/<uid>` (a LaunchAgent lives in the logged-in user's session) or `system`. */
export function launchdDomain(input: ServiceInput): string {
  return input.scope === "system" ? "system" : `gui/${input.uid ?? 501}`;
}

function check(input: ServiceInput): void {
  checkInput(input, "darwin");
  if (input.user !== undefined && input.scope === "user") throw new UsageError("--run-as needs --system (a LaunchDaemon); a LaunchAgent always runs as you");
}

const followLog = (path: string) => `${path} (tail -f ${shellQuote(path)})`;

const string = (value: string) => `<string>${xmlEscape(value)}</string>`;

export function launchdPlist(input: ServiceInput): string {
  check(input);
  const entries: [string, string][] = [
    ["Label", string(LAUNCHD_LABEL)],
    ["ProgramArguments", `<array>\n${agentArgv(input, serviceLogFile(input).flag).map((a) => `    ${string(a)}`).join("\n")}\n  </array>`],
    ["EnvironmentVariables", `<dict>\n    <key>FLEETCRON_HOME</key>\n    ${string(input.home)}\n  </dict>`],
    ...(input.user !== undefined ? ([["UserName", string(input.user)]] as [string, string][]) : []),
    ["RunAtLoad", "<true/>"],
    ["KeepAlive", "<true/>"],
    // At most one restart every RESTART_DELAY_SEC seconds, like systemd's RestartSec.
    ["ThrottleInterval", `<integer>${RESTART_DELAY_SEC}</integer>`],
    // SIGTERM first; SIGKILL only after the agent's own shutdown timeout has had its chance.
    ["ExitTimeOut", `<integer>${stopTimeoutSec(input)}</integer>`],
    // The log itself is the agent's rotating file; only startup errors and crashes reach stderr.
    ["StandardErrorPath", string(crashLogPath(input))],
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    "<!-- Written by `fleetcron service install`; run it again to change this file. -->",
    '<plist version="1.0">',
    "<dict>",
    ...entries.map(([key, value]) => `  <key>${key}</key>\n  ${value}`),
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}

export const launchd: ServiceGenerator = {
  platform: "darwin",
  defaultScope: "user",
  manager: "launchd",
  definition(input) {
    return { path: posix.join(plistDir(input), `${LAUNCHD_LABEL}.plist`), content: launchdPlist(input), encoding: "utf8", mode: 0o644 };
  },
  install(input, state) {
    const file = this.definition(input);
    const domain = launchdDomain(input);
    const steps: Step[] = [{ kind: "mkdir", path: plistDir(input), mode: 0o755 }];
    if (!state.homeExists) steps.push({ kind: "mkdir", path: input.home, mode: 0o700 });
    // launchd opens StandardErrorPath but does not create its folder.
    steps.push({ kind: "mkdir", path: posix.dirname(crashLogPath(input)), mode: 0o700 });
    if (!state.homeExists && input.user !== undefined) {
      steps.push({ kind: "run", command: { argv: ["chown", "-R", input.user, input.home] }, why: `the agent runs as ${input.user} and writes its home and logs` });
    }
    steps.push({ kind: "write", file });
    if (state.replacing) steps.push({ kind: "run", command: { argv: ["launchctl", "bootout", `${domain}/${LAUNCHD_LABEL}`], ignoreFailure: true }, why: "unload the old definition (the agent hands over its serial)" });
    steps.push(
      { kind: "run", command: { argv: ["launchctl", "enable", `${domain}/${LAUNCHD_LABEL}`] }, why: "clear an earlier `launchctl disable`" },
      { kind: "run", command: { argv: ["launchctl", "bootstrap", domain, file.path] }, why: "load it: RunAtLoad starts the agent now and at every login/boot" },
    );
    return steps;
  },
  uninstall(input) {
    return [
      { kind: "run", command: { argv: ["launchctl", "bootout", `${launchdDomain(input)}/${LAUNCHD_LABEL}`], ignoreFailure: true }, why: "stop the agent (it finishes running work) and unload it" },
      { kind: "remove", path: this.definition(input).path },
    ];
  },
  status(input) {
    return {
      file: this.definition(input).path,
      runningCommand: { argv: ["launchctl", "print", `${launchdDomain(input)}/${LAUNCHD_LABEL}`] },
      parseRunning({ exitCode, stdout }) {
        if (exitCode !== 0) return { running: false, detail: "not loaded" };
        const state = /^\s*state = (.+)$/m.exec(stdout)?.[1]?.trim() ?? "unknown";
        const pid = /^\s*pid = (\d+)$/m.exec(stdout)?.[1];
        return { running: state === "running", detail: pid ? `${state}, pid ${pid}` : state };
      },
    };
  },
  logs(input) {
    return followLog(logPath(input));
  },
  logsFromDefinition(content) {
    const args = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(content)?.[1] ?? "";
    const argv = [...args.matchAll(/<string>([^<]*)<\/string>/g)].map((m) => xmlUnescape(m[1]!));
    const fromFlag = logFileFromArgv(argv);
    if (fromFlag) return followLog(fromFlag);
    // A definition written before FleetCron kept its own log: launchd's file.
    const path = /<key>StandardErrorPath<\/key>\s*<string>([^<]*)<\/string>/.exec(content)?.[1];
    return path && !path.endsWith("launchd-stderr.log") ? followLog(xmlUnescape(path)) : null;
  },
  notes(input) {
    const rotation = `the agent rotates its log itself (log_max_mb, log_keep); ${crashLogPath(input)} gets only what it writes before its log is open or when it crashes`;
    return input.scope === "user" ? ["a LaunchAgent runs while you are logged in (gui session); for a server that must run with nobody logged in use --system (a LaunchDaemon, sudo)", rotation] : [rotation];
  },
};
