/**
 * The impure half of `fleetcron service`: checks the host, carries out the generators' steps and
 * asks the service manager how the agent is doing. Commands go through a `Runner` so tests can
 * stand in for systemctl, launchctl and schtasks.
 */
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { EXIT_FAILED, FleetCronError } from "../core/errors.ts";
import { encodeUtf16 } from "./windows.ts";
import { describeStep, quoteStyle, showCommand, type Command, type InstallState, type ServiceFile, type ServiceGenerator, type ServiceInput, type Step } from "./shared.ts";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The program itself was not found. */
  missing?: boolean;
}

export type Runner = (argv: string[]) => RunResult;

export const systemRunner: Runner = (argv) => {
  const program = Bun.which(argv[0]!);
  if (!program) return { exitCode: 127, stdout: "", stderr: `${argv[0]}: command not found`, missing: true };
  const result = Bun.spawnSync([program, ...argv.slice(1)], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
};

export function fileBytes(file: ServiceFile): Buffer {
  return file.encoding === "utf16le" ? encodeUtf16(file.content) : Buffer.from(file.content, "utf8");
}

/** Whether a definition is in place, and whether FLEETCRON_HOME exists: what `install` starts from. */
export function installState(gen: ServiceGenerator, input: ServiceInput, run: Runner): InstallState {
  return { replacing: isInstalled(gen, input, run), homeExists: existsSync(input.home) };
}

export function isInstalled(gen: ServiceGenerator, input: ServiceInput, run: Runner): boolean {
  const probe = gen.status(input);
  if (probe.file) return existsSync(probe.file);
  return probe.installedCommand ? run(probe.installedCommand.argv).exitCode === 0 : false;
}

/**
 * Refuses early, before anything is written, what would fail half-way: no service manager, no
 * permission on the definition's folder, an unknown account. Returns warnings for what would
 * work but probably not as the operator means.
 */
export function preflight(gen: ServiceGenerator, input: ServiceInput, run: Runner, action: "install" | "uninstall"): string[] {
  const warnings: string[] = [];
  const definition = gen.definition(input);
  const tool = gen.platform === "linux" ? "systemctl" : gen.platform === "darwin" ? "launchctl" : "schtasks";
  if (!Bun.which(tool)) {
    throw new FleetCronError(
      "E_SERVICE_MANAGER",
      gen.platform === "linux"
        ? "systemctl not found: this machine does not use systemd. Run `fleetcron run` from your init system or process supervisor instead (`fleetcron service install --dry-run` shows the command line and settings a unit would use)"
        : `${tool} not found on this machine; it is needed to ${action} the ${gen.manager} service`,
      EXIT_FAILED,
    );
  }
  if (gen.platform === "linux" && input.scope === "system" && !existsSync("/run/systemd/system")) {
    throw new FleetCronError(
      "E_SERVICE_MANAGER",
      "systemd is not running as this machine's init (no /run/systemd/system; a container?): a unit would never start. Run `fleetcron run` under the container's or machine's own supervisor instead",
      EXIT_FAILED,
    );
  }
  if (gen.platform === "linux" && input.scope === "user") {
    const session = run(["systemctl", "--user", "show-environment"]);
    if (session.exitCode !== 0) {
      throw new FleetCronError(
        "E_SERVICE_MANAGER",
        `no systemd user session here (\`systemctl --user\` says: ${`${session.stderr}${session.stdout}`.trim() || `exit ${session.exitCode}`}). Log in as that user directly (su/sudo do not start a session), or install a system-wide unit (sudo, without --user)`,
        EXIT_FAILED,
      );
    }
  }
  if (gen.platform !== "windows") {
    const dir = dirname(definition.path);
    const probe = existsSync(dir) ? dir : nearestExisting(dir);
    try {
      accessSync(probe, constants.W_OK);
    } catch {
      throw new FleetCronError(
        "E_PERMISSION",
        `permission denied writing ${dir}: run it again with sudo${input.scope === "system" ? `, or use --user for a ${gen.platform === "darwin" ? "LaunchAgent" : "unit"} of your own` : ""}`,
        EXIT_FAILED,
      );
    }
  }
  if (action === "install" && input.user !== undefined && gen.platform !== "windows") {
    const id = run(["id", "-u", input.user]);
    if (id.exitCode !== 0) {
      throw new FleetCronError(
        "E_NO_USER",
        `--run-as: there is no user "${input.user}" on this machine; create it first${gen.platform === "linux" ? ` (useradd --system --home-dir /var/lib/fleetcron --shell /usr/sbin/nologin ${input.user})` : ""}`,
        EXIT_FAILED,
      );
    }
    const uid = Number(id.stdout.trim());
    if (existsSync(input.home) && statSync(input.home).uid !== uid) {
      warnings.push(`${input.home} belongs to another user, and ${input.user} must write its lock and database there: pick a home of its own with --home (e.g. --home /var/lib/fleetcron, created and given to ${input.user})`);
    }
    if (input.configPath && statSync(input.configPath).uid !== uid && (statSync(input.configPath).mode & 0o004) === 0) {
      warnings.push(`${input.user} may not be able to read ${input.configPath}; give it the file: chown ${input.user} ${input.configPath}`);
    }
  }
  return warnings;
}

function nearestExisting(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** What to tell an operator when a service manager refuses. */
function hintFor(gen: ServiceGenerator, command: Command, output: string): string {
  const text = output.toLowerCase();
  if (text.includes("not been booted with systemd") || text.includes("not booted with systemd")) return "systemd is not running on this machine (a container?); run `fleetcron run` under its own supervisor";
  if (command.argv.includes("--user") && (text.includes("failed to connect to bus") || text.includes("xdg_runtime_dir"))) {
    return "no systemd user session here (su/sudo do not start one): log in as that user directly, or use a system-wide unit (sudo, without --user)";
  }
  if (text.includes("access denied") || text.includes("access is denied") || text.includes("permission denied") || text.includes("operation not permitted") || text.includes("interactive authentication required")) {
    return gen.platform === "windows" ? "run it from an elevated prompt (Run as administrator)" : "run it again with sudo";
  }
  if (gen.platform === "darwin" && command.argv.some((a) => a.startsWith("gui/")) && (text.includes("domain does not support") || text.includes("could not find domain") || text.includes("125"))) {
    return "there is no GUI login session for this user (over SSH?): log in at the console, or install a LaunchDaemon with --system (sudo)";
  }
  return "";
}

export interface StepOutcome {
  step: string;
  ok: boolean;
  output?: string;
}

/**
 * Carries out the steps in order; stops at the first one that fails (unless it may fail) and says
 * what to do. A definition this run wrote where there was none is removed again on failure, so a
 * failed install does not leave a half-installed service behind.
 */
export function executeSteps(gen: ServiceGenerator, steps: Step[], run: Runner): StepOutcome[] {
  const outcomes: StepOutcome[] = [];
  const created: string[] = [];
  try {
    runSteps(gen, steps, run, outcomes, created);
  } catch (error) {
    for (const path of created) rmSync(path, { force: true });
    if (created.length && error instanceof FleetCronError) {
      throw new FleetCronError(error.code, `${error.message}\nremoved again: ${created.join(", ")}`, error.exitCode);
    }
    throw error;
  }
  return outcomes;
}

function runSteps(gen: ServiceGenerator, steps: Step[], run: Runner, outcomes: StepOutcome[], created: string[]): void {
  for (const step of steps) {
    const described = describeStep(step, quoteStyle(gen.platform));
    try {
      switch (step.kind) {
        case "mkdir":
          mkdirSync(step.path, { recursive: true, mode: step.mode });
          break;
        case "write":
          if (!existsSync(step.file.path)) created.push(step.file.path);
          writeFileSync(step.file.path, fileBytes(step.file), { mode: step.file.mode });
          chmodSync(step.file.path, step.file.mode); // the mode given to writeFileSync is only used for a new file, and under the umask
          break;
        case "remove":
          rmSync(step.path, { force: true });
          break;
        case "run": {
          const result = run(step.command.argv);
          const output = `${result.stdout}${result.stderr}`.trim();
          if (result.exitCode !== 0 && !step.command.ignoreFailure) {
            const hint = hintFor(gen, step.command, output);
            throw new FleetCronError(
              "E_SERVICE_COMMAND",
              `\`${showCommand(step.command, quoteStyle(gen.platform))}\` failed (exit ${result.exitCode})${output ? `: ${output}` : ""}${hint ? `\n${hint}` : ""}${outcomes.length ? `\ndone before it: ${outcomes.map((o) => o.step).join("; ")}` : ""}`,
              EXIT_FAILED,
            );
          }
          outcomes.push({ step: described, ok: result.exitCode === 0, ...(output ? { output } : {}) });
          continue;
        }
      }
    } catch (error) {
      if (error instanceof FleetCronError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const path = step.kind === "write" ? step.file.path : step.kind === "run" ? step.command.argv[0] : step.path;
      const why = code === "EACCES" || code === "EPERM" ? `permission denied: run it again with sudo${gen.platform === "windows" ? " (an elevated prompt)" : ""}, or use --user` : (error as Error).message;
      throw new FleetCronError("E_SERVICE_FILE", `cannot ${step.kind} ${path}: ${why}`, EXIT_FAILED);
    }
    outcomes.push({ step: described, ok: true });
  }
}

export interface ServiceStatus {
  platform: string;
  manager: string;
  scope: string;
  definition: string | null;
  installed: boolean;
  running: boolean | null;
  state: string;
  logs: string;
}

export function serviceStatus(gen: ServiceGenerator, input: ServiceInput, run: Runner): ServiceStatus {
  const probe = gen.status(input);
  const installed = isInstalled(gen, input, run);
  // An installed definition knows where it logs, whatever FLEETCRON_HOME this shell has.
  const installedLogs = installed && probe.file && gen.logsFromDefinition ? gen.logsFromDefinition(readFileSync(probe.file, "utf8")) : null;
  const base = { platform: gen.platform, manager: gen.manager, scope: input.scope, definition: probe.file ?? null, installed, logs: installedLogs ?? gen.logs(input) };
  if (!installed) return { ...base, running: false, state: "not installed" };
  const result = run(probe.runningCommand.argv);
  if (result.missing) return { ...base, running: null, state: `${probe.runningCommand.argv[0]} not found: cannot tell whether it runs` };
  const parsed = probe.parseRunning(result);
  return { ...base, running: parsed.running, state: parsed.detail };
}
