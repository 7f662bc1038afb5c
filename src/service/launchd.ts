/** macOS: a launchd property list, a LaunchAgent of the user (default) or a LaunchDaemon (--system). */
import { posix } from "node:path";
import { UsageError } from "../core/errors.ts";
import { agentArgv, checkInput, LAUNCHD_LABEL, RESTART_DELAY_SEC, shellQuote, stopTimeoutSec, xmlEscape, xmlUnescape, type ServiceGenerator, type ServiceInput, type Step } from "./shared.ts";

export const SYSTEM_DAEMON_DIR = "/Library/LaunchDaemons";

export function plistDir(input: ServiceInput): string {
  return input.scope === "system" ? SYSTEM_DAEMON_DIR : posix.join(input.userHome, "Library", "LaunchAgents");
}

export function logPath(input: ServiceInput): string {
  return posix.join(input.home, "logs", "fleetcron.log");
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
    ["ProgramArguments", `<array>\n${agentArgv(input).map((a) => `    ${string(a)}`).join("\n")}\n  </array>`],
    ["EnvironmentVariables", `<dict>\n    <key>FLEETCRON_HOME</key>\n    ${string(input.home)}\n  </dict>`],
    ...(input.user !== undefined ? ([["UserName", string(input.user)]] as [string, string][]) : []),
    ["RunAtLoad", "<true/>"],
    ["KeepAlive", "<true/>"],
    // At most one restart every RESTART_DELAY_SEC seconds, like systemd's RestartSec.
    ["ThrottleInterval", `<integer>${RESTART_DELAY_SEC}</integer>`],
    // SIGTERM first; SIGKILL only after the agent's own shutdown timeout has had its chance.
    ["ExitTimeOut", `<integer>${stopTimeoutSec(input)}</integer>`],
    // All logs go to stderr; stdout gets the same file so nothing is lost.
    ["StandardOutPath", string(logPath(input))],
    ["StandardErrorPath", string(logPath(input))],
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
    // launchd opens the log file but does not create its folder.
    steps.push({ kind: "mkdir", path: posix.dirname(logPath(input)), mode: 0o700 });
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
    const path = /<key>StandardErrorPath<\/key>\s*<string>([^<]*)<\/string>/.exec(content)?.[1];
    return path ? followLog(xmlUnescape(path)) : null;
  },
  notes(input) {
    return input.scope === "user"
      ? ["a LaunchAgent runs while you are logged in (gui session); for a server that must run with nobody logged in use --system (a LaunchDaemon, sudo)", "launchd does not rotate the log; add it to newsyslog if it grows"]
      : ["launchd does not rotate the log; add it to newsyslog if it grows"];
  },
};
