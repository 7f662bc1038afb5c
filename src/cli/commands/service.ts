import { defineCommand, type ArgsDef } from "citty";
import { accessSync, constants, statSync } from "node:fs";
import { userInfo } from "node:os";
import { resolve } from "node:path";
import { userHome } from "../../config/paths.ts";
import { UsageError } from "../../core/errors.ts";
import { executeSteps, installState, isInstalled, preflight, serviceStatus, systemRunner } from "../../service/apply.ts";
import { describeStep, GENERATORS, hostPlatform, joinLike, SERVICE_PLATFORMS, type ServiceGenerator, type ServiceInput, type QuoteStyle, quoteStyle, type ServicePlatform, type Step, WINDOWS_TASK_NAME } from "../../service/index.ts";
import { globalArgs } from "../_globals.ts";
import { output } from "../_output.ts";
import { loadRuntime } from "../_runtime.ts";

const platformArgs = {
  platform: { type: "string", description: `Preview another OS's definition: ${SERVICE_PLATFORMS.join(", ")} (implies --dry-run when not this OS)` },
  user: { type: "boolean", description: "Per-user service (systemd --user, a LaunchAgent: the macOS default, a Windows task run as --run-as with S4U)" },
  system: { type: "boolean", description: "System-wide service (/etc/systemd/system: the Linux default, a LaunchDaemon, a Windows task run as SYSTEM: the Windows default)" },
} satisfies ArgsDef;

const changeArgs = {
  ...platformArgs,
  "dry-run": { type: "boolean", description: "Print what would be written and run; change nothing" },
} satisfies ArgsDef;

/** A compiled binary runs its bundled script from Bun's virtual file system. */
export function runningCompiled(main: string = Bun.main): boolean {
  return main.startsWith("/$bunfs/") || /^[A-Za-z]:\\~BUN\\/.test(main);
}

/** Where previews for another OS point when this machine's paths cannot be used there. */
const EXAMPLE_PATHS: Record<ServicePlatform, { binary: string; config: string; home: string; userHome: string }> = {
  linux: { binary: "/usr/local/bin/fleetcron", config: "/etc/fleetcron/config.json", home: "/var/lib/fleetcron", userHome: "/home/you" },
  darwin: { binary: "/usr/local/bin/fleetcron", config: "/usr/local/etc/fleetcron/config.json", home: "/Users/you/.fleetcron", userHome: "/Users/you" },
  windows: { binary: "C:\\Program Files\\FleetCron\\fleetcron.exe", config: "C:\\ProgramData\\FleetCron\\config.json", home: "C:\\ProgramData\\FleetCron", userHome: "C:\\Users\\you" },
};

interface Resolved {
  gen: ServiceGenerator;
  input: ServiceInput;
  /** Not this machine's OS: nothing can be done, only shown. */
  preview: boolean;
  notes: string[];
  /** `install` must refuse: running from source without --binary. */
  fromSourceWithoutBinary: boolean;
}

function resolveService(args: Record<string, unknown>): Resolved {
  const host = hostPlatform();
  const asked = args.platform as string | undefined;
  if (asked !== undefined && !(SERVICE_PLATFORMS as readonly string[]).includes(asked)) throw new UsageError(`--platform must be one of ${SERVICE_PLATFORMS.join(", ")} (got "${asked}")`);
  const platform = (asked as ServicePlatform | undefined) ?? host;
  if (!platform) throw new UsageError(`FleetCron has no service support for ${process.platform}; preview one with --platform ${SERVICE_PLATFORMS.join("|")}`);
  const gen = GENERATORS[platform];
  if (args.user && args.system) throw new UsageError("--user and --system exclude each other; give one");
  const scope = args.user ? "user" : args.system ? "system" : gen.defaultScope;
  const preview = platform !== host;
  const { config } = loadRuntime();
  const notes: string[] = [];

  // Paths of this machine fit a preview only when both OSes write paths the same way.
  const foreign = preview && (platform === "windows") !== (host === "windows");
  const examples = EXAMPLE_PATHS[platform];
  if (foreign) notes.push(`previewing ${platform} on ${host ?? process.platform}: paths not given with --binary/--home are examples`);

  const compiled = runningCompiled();
  let binaryPath: string;
  let launcherArgs: string[] = [];
  if (args.binary) binaryPath = foreign ? (args.binary as string) : resolve(args.binary as string);
  else if (foreign) binaryPath = examples.binary;
  else if (compiled) binaryPath = process.execPath;
  else {
    binaryPath = process.execPath;
    launcherArgs = [resolve(Bun.main)];
    notes.push("running from source: this definition starts bun with the script; `install` needs --binary PATH (a service must point at a stable binary, not at a checkout that moves or changes)");
  }
  const home = args.home ? (foreign ? (args.home as string) : resolve(args.home as string)) : foreign ? examples.home : config.home;
  const configPath = foreign ? (config.path ? examples.config : null) : config.path;
  if (!configPath) notes.push(`no config file found: the agent will read ${joinLike(home, "config.json")} if it exists, else run on defaults (pass --config PATH to name one)`);

  const runAs = args["run-as"] as string | undefined;
  const hostUser = process.env.USERNAME ?? process.env.USER ?? userInfo().username;
  const windowsAccount = process.env.USERDOMAIN && process.platform === "win32" ? `${process.env.USERDOMAIN}\\${hostUser}` : hostUser;
  const input: ServiceInput = {
    binaryPath,
    launcherArgs,
    configPath,
    home,
    scope,
    ...(runAs !== undefined ? { user: runAs } : platform === "windows" && scope === "user" ? { user: windowsAccount } : {}),
    shutdownTimeoutSec: config.shutdown_timeout_sec,
    userHome: foreign ? examples.userHome : userHome(process.env),
    ...(process.env.XDG_CONFIG_HOME && !foreign ? { xdgConfigHome: process.env.XDG_CONFIG_HOME } : {}),
    ...(typeof process.getuid === "function" ? { uid: process.getuid() } : {}),
    // A preview for another OS cannot use this machine's log path.
    logFile: foreign ? null : config.log_file,
  };
  return { gen, input, preview, notes, fromSourceWithoutBinary: !compiled && !args.binary };
}

function scopeName(gen: ServiceGenerator, scope: string): string {
  if (gen.platform === "darwin") return scope === "system" ? "LaunchDaemon" : "LaunchAgent";
  if (gen.platform === "windows") return scope === "system" ? "task run as SYSTEM" : "task run as an account (S4U)";
  return scope === "system" ? "system-wide unit" : "user unit";
}

function stepJson(step: Step, style: QuoteStyle) {
  switch (step.kind) {
    case "write":
      return { kind: step.kind, path: step.file.path, mode: step.file.mode.toString(8), encoding: step.file.encoding, text: describeStep(step, style) };
    case "run":
      return { kind: step.kind, argv: step.command.argv, ignore_failure: step.command.ignoreFailure ?? false, why: step.why, text: describeStep(step, style) };
    default:
      return { kind: step.kind, path: step.path, text: describeStep(step, style) };
  }
}

/** The dry-run rendering: the file verbatim between markers (copy-pasteable), then every step in order. */
function renderPlan(action: string, r: Resolved, steps: Step[], warnings: string[]): string {
  const { gen, input } = r;
  const file = steps.find((s) => s.kind === "write");
  const lines = ["dry run: nothing is written and nothing is run", `${action} on ${gen.platform} (${gen.manager}, ${scopeName(gen, input.scope)})`, ""];
  if (file?.kind === "write") {
    lines.push(`--- ${file.file.path}${file.file.encoding === "utf16le" ? " (written as UTF-16LE with BOM)" : ""} ---`, file.file.content.replaceAll("\r\n", "\n").trimEnd(), "--- end of file ---", "");
  }
  lines.push("steps:", ...steps.map((s, i) => `  ${i + 1}. ${describeStep(s, quoteStyle(gen.platform))}`), "", `logs: ${gen.logs(input)}`);
  lines.push(...[...r.notes, ...gen.notes(input)].map((n) => `note: ${n}`), ...warnings.map((w) => `warning: ${w}`));
  return lines.join("\n");
}

function checkBinary(path: string): void {
  let ok = false;
  try {
    ok = statSync(path).isFile();
    accessSync(path, constants.X_OK);
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`--binary ${path} is not an executable file; point it at the installed fleetcron binary (e.g. /usr/local/bin/fleetcron)`);
}

const install = defineCommand({
  meta: { name: "install", description: "Install and start the agent as a service (systemd, launchd, Task Scheduler)" },
  args: {
    ...globalArgs,
    ...changeArgs,
    binary: { type: "string", description: "The fleetcron binary the service starts (default: this binary; required when running from source)" },
    "run-as": { type: "string", description: "Account the agent runs as (systemd User=, launchd UserName with --system, Windows S4U with --user)" },
    home: { type: "string", description: "FLEETCRON_HOME of the service (default: this one, $FLEETCRON_HOME or ~/.fleetcron)" },
  },
  run({ args }) {
    const r = resolveService(args);
    const dryRun = Boolean(args["dry-run"]) || r.preview;
    if (!dryRun && r.fromSourceWithoutBinary) {
      throw new UsageError(
        "running from source (bun src/main.ts): a service must point at a stable binary, not at bun and a checkout. Build one (bun run build --target <os>-<arch>), copy it to e.g. /usr/local/bin/fleetcron and pass --binary /usr/local/bin/fleetcron, or run `service install` from the binary itself. --dry-run shows the definition as it stands",
      );
    }
    if (!dryRun && !r.preview) checkBinary(r.input.binaryPath);
    const warnings = dryRun ? [] : preflight(r.gen, r.input, systemRunner, "install");
    const state = r.preview ? { replacing: false, homeExists: false } : installState(r.gen, r.input, systemRunner);
    const steps = r.gen.install(r.input, state);
    const base = { action: "install", dry_run: dryRun, platform: r.gen.platform, manager: r.gen.manager, scope: r.input.scope, replacing: state.replacing };
    const file = r.gen.definition(r.input);
    const planJson = { ...base, file: { path: file.path, encoding: file.encoding, content: file.content }, steps: steps.map((s) => stepJson(s, quoteStyle(r.gen.platform))), logs: r.gen.logs(r.input), notes: [...r.notes, ...r.gen.notes(r.input)], warnings };
    if (dryRun) return output(planJson, () => renderPlan("install", r, steps, warnings));
    const outcomes = executeSteps(r.gen, steps, systemRunner);
    const status = serviceStatus(r.gen, r.input, systemRunner);
    output({ ...planJson, done: outcomes, status }, () =>
      [
        `${state.replacing ? "replaced" : "installed"} ${file.path} (${r.gen.manager}, ${scopeName(r.gen, r.input.scope)})`,
        ...outcomes.map((o) => `  ${o.ok ? "ok  " : "skip"} ${o.step}`),
        `running: ${status.running === null ? "unknown" : status.running ? "yes" : "no"} (${status.state})`,
        `logs: ${status.logs}`,
        ...warnings.map((w) => `warning: ${w}`),
        ...r.gen.notes(r.input).map((n) => `note: ${n}`),
      ].join("\n"),
    );
  },
});

const uninstall = defineCommand({
  meta: { name: "uninstall", description: "Stop the service and remove its definition (the home, its data and logs stay)" },
  args: { ...globalArgs, ...changeArgs, home: { type: "string", description: "FLEETCRON_HOME the service was installed with (Windows keeps its task file there)" } },
  run({ args }) {
    const r = resolveService(args);
    const dryRun = Boolean(args["dry-run"]) || r.preview;
    const steps = r.gen.uninstall(r.input);
    const base = { action: "uninstall", dry_run: dryRun, platform: r.gen.platform, manager: r.gen.manager, scope: r.input.scope, steps: steps.map((s) => stepJson(s, quoteStyle(r.gen.platform))) };
    if (dryRun) return output(base, () => renderPlan("uninstall", r, steps, []));
    if (!isInstalled(r.gen, r.input, systemRunner)) {
      const where = r.gen.status(r.input).file ?? `task ${WINDOWS_TASK_NAME}`;
      return output({ ...base, installed: false, done: [] }, () => `not installed (no ${where}): nothing to do${r.gen.platform !== "windows" ? `; a ${r.input.scope === "system" ? "--user" : "--system"} service is removed with that flag` : ""}`);
    }
    preflight(r.gen, r.input, systemRunner, "uninstall");
    const outcomes = executeSteps(r.gen, steps, systemRunner);
    output({ ...base, installed: true, done: outcomes }, () => [`uninstalled (${r.gen.manager}, ${scopeName(r.gen, r.input.scope)}); FLEETCRON_HOME ${r.input.home} and its data stay`, ...outcomes.map((o) => `  ${o.ok ? "ok  " : "skip"} ${o.step}`)].join("\n"));
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Is the service installed, is it running, where does it log" },
  args: { ...globalArgs, ...platformArgs, home: { type: "string", description: "FLEETCRON_HOME the service was installed with" } },
  run({ args }) {
    const host = hostPlatform();
    if (args.platform && args.platform !== host) throw new UsageError(`service status looks at this machine (${host ?? process.platform}); --platform ${args.platform} only works with install/uninstall previews`);
    const explicit = Boolean(args.user || args.system);
    const scopes = explicit ? [undefined] : (["system", "user"] as const);
    const all = scopes.map((scope) => {
      const r = resolveService(scope ? { ...args, [scope]: true } : args);
      return serviceStatus(r.gen, r.input, systemRunner);
    });
    // Without --user/--system: the installed one(s), else the platform's default scope.
    const found = explicit ? all : all.filter((s) => s.installed);
    const shown = found.length ? found : all.filter((s) => s.scope === GENERATORS[host!].defaultScope);
    output({ services: shown }, () =>
      shown
        .map((s) =>
          [
            `${s.manager} (${s.scope}): ${s.installed ? "installed" : "not installed"}${s.definition ? ` — ${s.definition}` : ""}`,
            `running: ${s.running === null ? "unknown" : s.running ? "yes" : "no"} (${s.state})`,
            `logs:    ${s.logs}`,
            ...(s.installed ? [] : ["install: fleetcron service install (--dry-run to see what it writes)"]),
          ].join("\n"),
        )
        .join("\n\n"),
    );
  },
});

export default defineCommand({
  meta: { name: "service", description: "Install, remove or inspect the agent as an OS service (systemd, launchd, Task Scheduler)" },
  subCommands: { install, uninstall, status },
});
