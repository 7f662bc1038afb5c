/**
 * Windows: a Task Scheduler task (schtasks /Create /XML). Runs as SYSTEM (default, --system) or as
 * an account with an S4U logon (--user): either way it runs whether anyone is logged on or not.
 */
import { UsageError } from "../core/errors.ts";
import { agentArgv, checkInput, joinLike, serviceLogFile, WINDOWS_TASK_NAME, windowsArg, xmlEscape, type Command, type ServiceGenerator, type ServiceInput, type Step } from "./shared.ts";

const TN = ["/TN", WINDOWS_TASK_NAME];

/** The task definition is kept in FLEETCRON_HOME, for reference and for `schtasks /Create /XML`. */
export function taskXmlPath(input: ServiceInput): string {
  return joinLike(input.home, "fleetcron-task.xml");
}

/** Where FLEETCRON_HOME would be without the variable, for the account the task runs as. */
function defaultHomeOf(input: ServiceInput): string | null {
  return input.scope === "user" ? joinLike(input.userHome, ".fleetcron") : null;
}

/**
 * Task Scheduler has no per-task environment, so when the service's home is not the account's
 * default the variable is set for that account (user) or the machine (SYSTEM) with setx.
 */
function homeVariableCommand(input: ServiceInput): Command | null {
  const fallback = defaultHomeOf(input);
  if (fallback !== null && fallback.toLowerCase() === input.home.toLowerCase()) return null;
  return { argv: ["setx", "FLEETCRON_HOME", input.home, ...(input.scope === "system" ? ["/M"] : [])] };
}

function check(input: ServiceInput): void {
  checkInput(input, "windows");
  if (input.scope === "system" && input.user !== undefined) throw new UsageError("on Windows --system runs the task as SYSTEM; to run it as an account use --user --run-as DOMAIN\\user");
  if (input.scope === "user" && !input.user) throw new UsageError("a --user task needs the account it runs as: --run-as DOMAIN\\user");
}

export function taskXml(input: ServiceInput): string {
  check(input);
  // A task has no stdout or stderr: without a log file of its own the agent's log would be lost.
  const [command, ...args] = agentArgv(input, serviceLogFile(input).flag);
  const principal =
    input.scope === "system"
      ? ["      <UserId>S-1-5-18</UserId>", "      <RunLevel>HighestAvailable</RunLevel>"]
      : [`      <UserId>${xmlEscape(input.user!)}</UserId>`, "      <LogonType>S4U</LogonType>", "      <RunLevel>LeastPrivilege</RunLevel>"];
  return [
    '<?xml version="1.0" encoding="UTF-16"?>',
    "<!-- Written by `fleetcron service install`; run it again to change this task. -->",
    '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
    "  <RegistrationInfo>",
    "    <Description>FleetCron agent (distributed cron for HTTP jobs)</Description>",
    `    <URI>\\${WINDOWS_TASK_NAME}</URI>`,
    "  </RegistrationInfo>",
    "  <Triggers>",
    "    <BootTrigger>",
    "      <Enabled>true</Enabled>",
    "    </BootTrigger>",
    // A watchdog: Task Scheduler restarts a task that failed to start, not one that exited, so
    // every 5 minutes it is started again; IgnoreNew makes that a no-op while the agent runs.
    "    <TimeTrigger>",
    "      <StartBoundary>2000-01-01T00:00:00</StartBoundary>",
    "      <Repetition>",
    "        <Interval>PT5M</Interval>",
    "        <StopAtDurationEnd>false</StopAtDurationEnd>",
    "      </Repetition>",
    "      <Enabled>true</Enabled>",
    "    </TimeTrigger>",
    "  </Triggers>",
    "  <Principals>",
    '    <Principal id="Author">',
    ...principal,
    "    </Principal>",
    "  </Principals>",
    "  <Settings>",
    "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
    "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>",
    "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>",
    "    <AllowHardTerminate>true</AllowHardTerminate>",
    "    <StartWhenAvailable>true</StartWhenAvailable>",
    "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>",
    "    <IdleSettings>",
    "      <StopOnIdleEnd>false</StopOnIdleEnd>",
    "      <RestartOnIdle>false</RestartOnIdle>",
    "    </IdleSettings>",
    "    <AllowStartOnDemand>true</AllowStartOnDemand>",
    "    <Enabled>true</Enabled>",
    "    <Hidden>false</Hidden>",
    "    <RunOnlyIfIdle>false</RunOnlyIfIdle>",
    "    <WakeToRun>false</WakeToRun>",
    // PT0S: no limit (the default stops a task after 72 hours).
    "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>",
    // 5 = normal priority (the default, 7, is below normal).
    "    <Priority>5</Priority>",
    "    <RestartOnFailure>",
    "      <Interval>PT1M</Interval>",
    "      <Count>255</Count>", // the schema's limit (unsignedByte)
    "    </RestartOnFailure>",
    "  </Settings>",
    '  <Actions Context="Author">',
    "    <Exec>",
    `      <Command>${xmlEscape(windowsArg(command!))}</Command>`,
    `      <Arguments>${xmlEscape(args.map(windowsArg).join(" "))}</Arguments>`,
    `      <WorkingDirectory>${xmlEscape(input.home)}</WorkingDirectory>`,
    "    </Exec>",
    "  </Actions>",
    "</Task>",
    "",
  ].join("\r\n");
}

/** The bytes schtasks expects: UTF-16LE with a byte-order mark, as the declaration says. */
export function encodeUtf16(text: string): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
}

export const windowsTask: ServiceGenerator = {
  platform: "windows",
  defaultScope: "system",
  manager: "Task Scheduler",
  definition(input) {
    return { path: taskXmlPath(input), content: taskXml(input), encoding: "utf16le", mode: 0o644 };
  },
  install(input, state) {
    const file = this.definition(input);
    const steps: Step[] = [];
    if (!state.homeExists) steps.push({ kind: "mkdir", path: input.home, mode: 0o700 });
    steps.push({ kind: "write", file });
    const setHome = homeVariableCommand(input);
    if (setHome) {
      steps.push({ kind: "run", command: setHome, why: `Task Scheduler cannot set a task's environment: FLEETCRON_HOME for ${input.scope === "system" ? "the machine (SYSTEM and every user)" : "this account"}` });
    }
    if (state.replacing) steps.push({ kind: "run", command: { argv: ["schtasks", "/End", ...TN], ignoreFailure: true }, why: "stop the running agent" });
    steps.push(
      { kind: "run", command: { argv: ["schtasks", "/Create", ...TN, "/XML", file.path, "/F"] }, why: "register the task (start at boot, restart, no time limit)" },
      { kind: "run", command: { argv: ["schtasks", "/Run", ...TN] }, why: "start it now (the boot trigger fires at the next boot)" },
    );
    return steps;
  },
  uninstall(input) {
    return [
      { kind: "run", command: { argv: ["schtasks", "/End", ...TN], ignoreFailure: true }, why: "stop the agent" },
      { kind: "run", command: { argv: ["schtasks", "/Delete", ...TN, "/F"] }, why: "unregister the task" },
      { kind: "remove", path: taskXmlPath(input) },
    ];
  },
  status() {
    return {
      installedCommand: { argv: ["schtasks", "/Query", ...TN] },
      runningCommand: { argv: ["schtasks", "/Query", ...TN, "/FO", "LIST"] },
      parseRunning({ exitCode, stdout }) {
        if (exitCode !== 0) return { running: false, detail: "not registered" };
        const state = /^Status:\s*(.+)$/m.exec(stdout)?.[1]?.trim();
        return state ? { running: state === "Running", detail: state } : { running: null, detail: "status not readable (localized schtasks output?)" };
      },
    };
  },
  logs(input) {
    const path = serviceLogFile(input).path;
    return `${path} (Get-Content -Wait ${windowsArg(path)}); the task's own history is in Event Viewer > Applications and Services Logs > Microsoft > Windows > TaskScheduler > Operational`;
  },
  notes(input) {
    const notes =
      input.scope === "system"
        ? ["runs as SYSTEM (schtasks needs an elevated prompt); --user --run-as DOMAIN\\user runs it as an account instead"]
        : [`runs as ${input.user} with an S4U logon: no password stored, runs whether logged on or not; it cannot use that account's network credentials (SMB shares, Kerberos), plain HTTP(S) and MongoDB work`];
    notes.push("to stop the agent for good use `fleetcron service uninstall` or `schtasks /Change /TN FleetCron /Disable` (a watchdog trigger starts it again within 5 minutes after `schtasks /End`)");
    return notes;
  },
};
