import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliCommand, makeHome, runCli, type TestHome } from "../support/cli.ts";

/**
 * `fleetcron completion bash|zsh|fish` (issue 17), driven in the real shells: the script is
 * sourced and asked for completions as the shell would ask (bash: COMP_WORDS and the function;
 * fish: `complete -C`; zsh: the function with compadd/_describe stood in for, since completion
 * widgets need a terminal). Job names come from a real embedded store, a name with a space among
 * them; an unreachable store gives none, quickly.
 */
let t: TestHome;
let bin: string;
const scripts: Record<string, string> = {};
const shells = { bash: Bun.which("bash"), zsh: Bun.which("zsh"), fish: Bun.which("fish") };
const missing = Object.entries(shells).filter(([, path]) => !path).map(([name]) => name);
if (missing.length) {
  if (process.env.CI) throw new Error(`the completion scripts must be run in CI, but ${missing.join(", ")} is not installed (.ci/run installs them)`);
  console.warn(`SKIPPING completion in ${missing.join(", ")}: not installed`);
}

beforeAll(async () => {
  t = makeHome({});
  // The scripts call `fleetcron` by the name typed (the first word): a launcher on PATH.
  bin = join(t.dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "fleetcron"), `#!/bin/sh\nexec ${cliCommand().map((w) => JSON.stringify(w)).join(" ")} "$@"\n`);
  chmodSync(join(bin, "fleetcron"), 0o755);
  t.env.PATH = `${bin}:${t.env.PATH ?? "/usr/bin:/bin"}`;
  const jobs = join(t.dir, "jobs.json");
  writeFileSync(jobs, JSON.stringify([{ name: "Nightly report", every: "1h", url: "http://127.0.0.1:9/a" }, { name: "ping", every: "1m", url: "http://127.0.0.1:9/b" }]));
  const applied = await runCli(t, ["jobs", "apply", jobs]);
  expect(applied.exitCode).toBe(0);
  for (const shell of ["bash", "zsh", "fish"]) {
    const result = await runCli(t, ["completion", shell]);
    expect({ shell, code: result.exitCode, err: result.stderr }).toEqual({ shell, code: 0, err: "" });
    scripts[shell] = join(t.dir, `completion.${shell}`);
    writeFileSync(scripts[shell]!, result.stdout);
  }
}, 60_000);

afterAll(() => t?.cleanup());

function shell(argv: string[]): string {
  const result = Bun.spawnSync(argv, { env: t.env, cwd: t.dir, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: 30_000 });
  expect(result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
  return result.stdout.toString();
}

/** What bash offers after `line` (the last word is the one being completed). */
function bash(...words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
  const out = shell([shells.bash!, "-c", `source ${JSON.stringify(scripts.bash)}; COMP_WORDS=(${quoted}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _fleetcron; printf '%s\\n' "\${COMPREPLY[@]}"`]);
  return out.split("\n").filter(Boolean);
}

function fish(line: string): string[] {
  return shell([shells.fish!, "--no-config", "-c", `source ${JSON.stringify(scripts.fish)}; complete -C ${JSON.stringify(line)}`])
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t")[0]!);
}

function zsh(...words: string[]): string[] {
  const quoted = words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
  const stubs = [
    'compadd() { [[ "$1" == "-a" ]] && { print -rl -- "${(@P)2}"; return; }; [[ "$1" == "--" ]] && shift; print -rl -- "$@"; }',
    '_describe() { print -rl -- "${(@P)4}"; }',
    "_files() { print '<files>'; }",
    "compdef() { :; }",
  ].join("\n");
  const out = shell([shells.zsh!, "-f", "-c", `${stubs}\nsource ${JSON.stringify(scripts.zsh)}\nwords=(${quoted}); CURRENT=\${#words}; PREFIX="\${words[CURRENT]}"; _fleetcron`]);
  return out.split("\n").filter(Boolean).map((l) => l.replace(/(?<!\\):.*$/, ""));
}

describe.skipIf(!shells.bash)("bash", () => {
  test("commands, subcommands and flags", () => {
    expect(bash("fleetcron", "jo")).toEqual(["jobs"]);
    expect(bash("fleetcron", "")).toContain("completion");
    expect(bash("fleetcron", "jobs", "")).toEqual(["apply", "validate", "list", "show", "enable", "disable", "delete", "rename", "trigger", "next", "pause", "resume", "backfill"]);
    expect(bash("fleetcron", "service", "install", "--d")).toEqual(["--dry-run"]);
    expect(bash("fleetcron", "service", "install", "--platform", "")).toEqual(["linux", "darwin", "windows"]);
    expect(bash("fleetcron", "completion", "")).toEqual(["bash", "zsh", "fish"]);
    // A flag's value is not taken for a command name.
    expect(bash("fleetcron", "--config", "jobs", "r")).toEqual(["run", "reload", "reload-config", "runs"]);
  });

  test("job names from the store, quoted for the shell, for positional names and --job", () => {
    expect(bash("fleetcron", "jobs", "show", "")).toEqual(["Nightly\\ report", "ping"]);
    expect(bash("fleetcron", "jobs", "trigger", "N")).toEqual(["Nightly\\ report"]);
    expect(bash("fleetcron", "runs", "--job", "p")).toEqual(["ping"]);
    expect(bash("fleetcron", "--config", t.configPath, "jobs", "delete", "")).toEqual(["Nightly\\ report", "ping"]);
  });
});

describe.skipIf(!shells.fish)("fish", () => {
  test("commands, flags and job names", () => {
    expect(fish("fleetcron jo")).toEqual(["jobs"]);
    expect(fish("fleetcron jobs sh")).toEqual(["show"]);
    expect(fish("fleetcron jobs show ")).toEqual(["Nightly report", "ping"]);
    expect(fish("fleetcron runs --job ")).toEqual(["Nightly report", "ping"]);
    expect(fish("fleetcron service install --dr")).toEqual(["--dry-run"]);
    expect(fish("fleetcron completion ")).toEqual(["bash", "fish", "zsh"]);
  });
});

describe.skipIf(!shells.zsh)("zsh", () => {
  test("the script parses, and offers commands, flags and job names", () => {
    shell([shells.zsh!, "-n", scripts.zsh!]);
    expect(zsh("fleetcron", "jo")).toContain("jobs");
    expect(zsh("fleetcron", "jobs", "show", "")).toEqual(["Nightly report", "ping"]);
    expect(zsh("fleetcron", "runs", "--")).toContain("--job");
    expect(zsh("fleetcron", "--config", t.configPath, "runs", "--job", "")).toEqual(["Nightly report", "ping"]);
    expect(zsh("fleetcron", "config", "--config", "")).toEqual(["<files>"]);
  });
});

test("--job-names prints nothing, within its timeout, when the store takes connections but never answers", async () => {
  // Accepts and stays silent: the MongoDB driver would wait its default 30 s for a reply.
  const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const bad = join(t.dir, "unreachable.json");
    writeFileSync(bad, JSON.stringify({ mongodb_uri: `mongodb://127.0.0.1:${silent.port}/fleetcron?directConnection=true` }), { mode: 0o600 });
    const started = performance.now();
    const result = await runCli(t, ["--config", bad, "completion", "--job-names"]);
    expect({ code: result.exitCode, out: result.stdout, err: result.stderr }).toEqual({ code: 0, out: "", err: "" });
    expect(performance.now() - started).toBeLessThan(5_000);
  } finally {
    silent.stop(true);
  }
}, 40_000);

test("an unknown shell is a usage error that names the valid ones", async () => {
  const result = await runCli(t, ["completion", "tcsh"]);
  expect(result.exitCode).toBe(2);
  expect(result.stderr).toContain("completion takes a shell: bash, zsh, fish");
});
