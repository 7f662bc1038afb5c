import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cliCommand, eventually, makeHome, runCli, startAgent, type CliResult, type TestHome } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Issue 12, "a first day without surprises", through the real CLI: each describe is one item of
 * the issue (strict parsing, names, the store and destructive writes, progress and Ctrl-C,
 * readable output, validation, the quick start).
 */
const REPO = resolve(import.meta.dir, "../..");
const ANSI = /\x1b\[[0-9;]*m/;

let home: TestHome;
let sink: Sink;
// /flaky answers 503 to its first two requests of each run; /slow takes 20 s.
const flakyCounts = new Map<string, number>();

beforeAll(() => {
  sink = startSink({
    status: (req) => {
      if (!new URL(req.url).pathname.startsWith("/flaky")) return 200;
      const run = req.headers.get("x-fleetcron-run-id") ?? "";
      const n = (flakyCounts.get(run) ?? 0) + 1;
      flakyCounts.set(run, n);
      return n <= 2 ? 503 : 200;
    },
    delayMs: (req) => (new URL(req.url).pathname.startsWith("/slow") ? 20_000 : 0),
  });
  home = makeHome({ tz: "Asia/Seoul", heartbeat_sec: 1, dead_after_sec: 3, failover_step_sec: 1, shutdown_timeout_sec: 5, secrets: { SINK: sink.url } }, "fleetcron-first-day");
});
afterAll(async () => {
  await sink.stop();
  home.cleanup();
});

function jobsFile(name: string, jobs: unknown): string {
  const path = join(home.dir, name);
  writeFileSync(path, typeof jobs === "string" ? jobs : JSON.stringify(jobs, null, 2));
  return path;
}

const BASE_JOBS = [
  { name: "Daily Report", hour: 9, minute: 30, url: "{{SINK}}/report" },
  { name: "Data Pipeline", every: "1h", method: "POST", url: "{{SINK}}/pipeline" },
  { name: "Flaky", every: "1h", method: "POST", url: "{{SINK}}/flaky", retry: { retries: 3, delay_sec: 0.2 } },
  { name: "Slow", every: "1h", url: "{{SINK}}/slow", timeout_sec: 60 },
];

function json(result: CliResult): any {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.exitCode}):\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

const shellQuote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;

/**
 * The CLI under a pseudo-terminal (util-linux `script`), answering `answer` once `prompt` shows.
 * Returns everything the terminal showed and the command's exit code (`script -e`).
 */
async function runInPty(env: Record<string, string>, args: string[], opts: { prompt?: string; answer?: string } = {}): Promise<{ exitCode: number; screen: string }> {
  const command = [...cliCommand(), ...args].map(shellQuote).join(" ");
  const proc = Bun.spawn(["script", "-q", "-e", "-c", command, "/dev/null"], { env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let screen = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) screen += decoder.decode(chunk);
  })();
  if (opts.prompt) {
    await eventually(() => screen.includes(opts.prompt!), 20_000, `the prompt "${opts.prompt}" in:\n${screen}`);
    proc.stdin.write(opts.answer ?? "");
    proc.stdin.flush();
  }
  const exitCode = await proc.exited;
  await reading;
  return { exitCode, screen };
}

describe("setup", () => {
  test("script(1) is here to give the CLI a terminal", () => {
    // Without it the prompt and colour tests below cannot run: fail, never pass by skipping.
    expect(Bun.which("script")).not.toBeNull();
  });

  test("the test jobs apply", async () => {
    jobsFile("every-second.json", [{ name: "Tick", every: "1s", url: "{{SINK}}/tick" }]);
    const applied = await runCli(home, ["jobs", "apply", jobsFile("base.json", BASE_JOBS), "--json"]);
    expect(applied.exitCode).toBe(0);
    expect(json(applied).changes.map((c: { change: string }) => c.change)).toEqual(["created", "created", "created", "created"]);
  }, 30_000);
});

describe("1. strict parsing", () => {
  test("a mistyped flag with no command exits 2 with a suggestion and the usage, and starts nothing", async () => {
    const empty = mkdtempSync(join(tmpdir(), "fleetcron-empty-"));
    try {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("FLEETCRON_")) env[k] = v;
      Object.assign(env, { FLEETCRON_HOME: join(empty, "home"), NO_COLOR: "1" });
      const proc = Bun.spawn([...cliCommand(), "--hlep"], { cwd: empty, env, stdout: "pipe", stderr: "pipe" });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr.split("\n")[0]).toBe("error: unknown option --hlep; did you mean --help?");
      expect(stderr).toContain("USAGE fleetcron [COMMAND] [OPTIONS]");
      // Nothing was started: no home, no database.
      expect(existsSync(join(empty, "home"))).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test("--version anywhere on the line prints the version and starts no agent", async () => {
    for (const args of [["--config", home.configPath, "--version"], ["--json", "--version"], ["-V"], ["jobs", "list", "--version"]]) {
      const result = await runCli(home, args);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/fleetcron \d+\.\d+\.\d+/);
      expect(result.stderr).toBe("");
    }
    expect(JSON.parse((await runCli(home, ["--json", "--version"])).stdout).version).toMatch(/^fleetcron /);
    expect(existsSync(join(home.home, "agent.lock"))).toBe(false);
  }, 30_000);

  test("unknown flags, commands and extra arguments exit 2 with the subcommand's usage, error first", async () => {
    const cases: [string[], string, string][] = [
      [["runs", "--limt", "5"], "unknown option --limt; did you mean --limit?", "USAGE fleetcron runs"],
      [["jobs", "list", "--jsno"], "unknown option --jsno; did you mean --json?", "USAGE fleetcron jobs list"],
      [["jobs", "lst"], "unknown command \"lst\"; did you mean `fleetcron jobs list`?", "USAGE fleetcron jobs COMMAND"],
      [["jobs", "show", "Daily", "Report"], 'unexpected argument "Report"', "USAGE fleetcron jobs show NAME"],
      [["runs", "shwo", "x"], "did you mean `fleetcron runs show`?", "USAGE fleetcron runs"],
      [["machines", "extra"], "`fleetcron machines` takes no arguments", "USAGE fleetcron machines"],
      [["runs", "--limit"], "--limit needs a value", "USAGE fleetcron runs"],
    ];
    for (const [args, message, usage] of cases) {
      const result = await runCli(home, args);
      expect(result.exitCode).toBe(2);
      expect(result.stdout).toBe("");
      // The error first, on its own line, then the usage.
      expect(result.stderr.startsWith("error: ")).toBe(true);
      expect(result.stderr.split("\n")[0]).toContain(message);
      expect(result.stderr).toContain(usage);
    }
  }, 30_000);

  test("--json usage errors are a JSON document on stdout, the message on stderr", async () => {
    const result = await runCli(home, ["runs", "--limt", "5", "--json"]);
    expect(result.exitCode).toBe(2);
    expect(json(result).error).toMatchObject({ code: "E_USAGE", exit_code: 2 });
    expect(json(result).error.message).toContain("--limt");
    expect(result.stderr).toContain("unknown option --limt");
  });

  test("--help names the whole command, lists --version, and is coloured only on a terminal", async () => {
    const piped = await runCli(home, ["runs", "--help"]);
    expect(piped.exitCode).toBe(0);
    expect(piped.stdout).toContain("USAGE fleetcron runs [COMMAND] [OPTIONS]");
    expect(piped.stdout).toContain("--version");
    expect(piped.stdout).toContain("show");
    expect(piped.stdout).not.toMatch(ANSI);
    const { NO_COLOR: _drop, ...env } = home.env;
    const tty = await runInPty({ ...env, TERM: "xterm" }, ["runs", "--help"]);
    expect(tty.exitCode).toBe(0);
    expect(tty.screen).toMatch(ANSI);
    expect(tty.screen.replace(new RegExp(ANSI.source, "g"), "")).toContain("USAGE fleetcron runs");
  }, 30_000);
});

describe("2. names that do not exist", () => {
  test("an unknown job exits 1 with the nearest names; with --json the error is on stdout and the log on stderr", async () => {
    for (const args of [["jobs", "show", "Daly Report"], ["runs", "--job", "Daly Report"], ["jobs", "trigger", "Daly Report"]]) {
      const result = await runCli(home, args);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain('no job named "Daly Report"; did you mean "Daily Report"?');
    }
    const result = await runCli(home, ["jobs", "show", "Daly Report", "--json"]);
    expect(result.exitCode).toBe(1);
    expect(json(result)).toEqual({ error: { code: "E_NO_JOB", message: 'no job named "Daly Report"; did you mean "Daily Report"?', exit_code: 1, matches: ["Daily Report"] } });
    expect(result.stderr).toContain("no job named");
  }, 30_000);

  test("an unknown machine id exits 1 (reload --wait, drain) and nothing is sent", async () => {
    const reload = await runCli(home, ["reload", "node-7", "--wait"]);
    expect(reload.exitCode).toBe(1);
    expect(reload.stderr).toContain('no machine "node-7" has run against this store');
    const drain = await runCli(home, ["drain", "node-9", "--json"]);
    expect(drain.exitCode).toBe(1);
    expect(json(drain).error.code).toBe("E_NO_MACHINE");
  }, 30_000);
});

describe("3. which store, and destructive writes", () => {
  test("with no config file the CLI says which store it uses and where that came from", async () => {
    const bare = mkdtempSync(join(tmpdir(), "fleetcron-noconfig-"));
    try {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("FLEETCRON_")) env[k] = v;
      Object.assign(env, { FLEETCRON_HOME: join(bare, "home"), NO_COLOR: "1" });
      const proc = Bun.spawn([...cliCommand(), "jobs", "list"], { cwd: bare, env, stdout: "pipe", stderr: "pipe" });
      const [, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect(code).toBe(0);
      expect(stderr).toContain("no config file found");
      expect(stderr).toContain(join(bare, "home", "fleetcron.db"));
      expect(stderr).toContain("$FLEETCRON_HOME");
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });

  test("a write with no agent alive on the store warns on stderr", async () => {
    const result = await runCli(home, ["jobs", "disable", "Data Pipeline"]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain("no agent is alive on this store");
    expect((await runCli(home, ["jobs", "enable", "Data Pipeline"])).exitCode).toBe(0);
  }, 30_000);

  test("--dry-run prints the diff with the changed fields and writes nothing", async () => {
    const changed = BASE_JOBS.map((j) => (j.name === "Daily Report" ? { ...j, minute: 45 } : j));
    const dry = await runCli(home, ["jobs", "apply", jobsFile("changed.json", changed), "--dry-run"]);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain("~ updated   Daily Report");
    expect(dry.stdout).toContain("minute: 30 → 45");
    expect(dry.stdout).toContain("dry run, nothing written");
    const show = json(await runCli(home, ["jobs", "show", "Daily Report", "--json"]));
    expect(show.document.minute).toBe(30);
  }, 30_000);

  test("--prune without a terminal needs --yes; nothing is deleted until then", async () => {
    const fewer = jobsFile("fewer.json", BASE_JOBS.filter((j) => j.name !== "Data Pipeline"));
    const refused = await runCli(home, ["jobs", "apply", fewer, "--prune"]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("- Data Pipeline");
    expect(refused.stderr).toContain("pass --yes");
    expect(json(await runCli(home, ["jobs", "list", "--json"])).jobs.map((j: { name: string }) => j.name)).toContain("Data Pipeline");
  }, 30_000);

  test("--prune on a terminal lists what it deletes and asks: n keeps everything, y deletes", async () => {
    const fewer = jobsFile("fewer.json", BASE_JOBS.filter((j) => j.name !== "Data Pipeline"));
    const no = await runInPty(home.env, ["jobs", "apply", fewer, "--prune"], { prompt: "[y/N]", answer: "n\r" });
    expect(no.screen).toContain("- Data Pipeline");
    expect(no.exitCode).toBe(1);
    expect(no.screen).toContain("nothing written");
    expect(json(await runCli(home, ["jobs", "list", "--json"])).jobs.map((j: { name: string }) => j.name)).toContain("Data Pipeline");
    const yes = await runInPty(home.env, ["jobs", "apply", fewer, "--prune"], { prompt: "[y/N]", answer: "y\r" });
    expect(yes.exitCode).toBe(0);
    expect(yes.screen).toContain("- deleted   Data Pipeline");
    expect(json(await runCli(home, ["jobs", "list", "--json"])).jobs.map((j: { name: string }) => j.name)).not.toContain("Data Pipeline");
    expect((await runCli(home, ["jobs", "apply", jobsFile("base.json", BASE_JOBS)])).exitCode).toBe(0);
  }, 60_000);

  test("a job that comes back under a new name is reported as a likely rename; jobs rename keeps id and history", async () => {
    const triggered = json(await runCli(home, ["jobs", "trigger", "Daily Report", "--json"]));
    expect(triggered.status).toBe("success");
    const renamedFile = BASE_JOBS.map((j) => (j.name === "Daily Report" ? { ...j, name: "Morning Report" } : j));
    const dry = await runCli(home, ["jobs", "apply", jobsFile("renamed.json", renamedFile), "--dry-run", "--json"]);
    expect(json(dry).changes.find((c: { name: string }) => c.name === "Morning Report")).toEqual({ name: "Morning Report", change: "created", likely_rename_of: "Daily Report" });
    const human = await runCli(home, ["jobs", "apply", jobsFile("renamed.json", renamedFile), "--dry-run"]);
    expect(human.stdout).toContain('fleetcron jobs rename "Daily Report" "Morning Report"');

    const before = json(await runCli(home, ["jobs", "show", "Daily Report", "--json"]));
    const renamed = await runCli(home, ["jobs", "rename", "Daily Report", "Morning Report", "--json"]);
    expect(renamed.exitCode).toBe(0);
    const after = json(await runCli(home, ["jobs", "show", "Morning Report", "--json"]));
    expect(after.id).toBe(before.id);
    const history = json(await runCli(home, ["runs", "--job", "Morning Report", "--json"])).runs;
    expect(history.map((r: { _id: string }) => r._id)).toContain(triggered._id);
    // Now the renamed file is unchanged for it.
    const applied = json(await runCli(home, ["jobs", "apply", jobsFile("renamed.json", renamedFile), "--json"]));
    expect(applied.changes.find((c: { name: string }) => c.name === "Morning Report").change).toBe("unchanged");
  }, 60_000);

  test("deleting a job with a running attempt says so", async () => {
    const slow = Bun.spawn([...cliCommand(), "jobs", "trigger", "Slow"], { env: home.env, stdout: "pipe", stderr: "pipe" });
    try {
      await eventually(async () => json(await runCli(home, ["runs", "--job", "Slow", "--status", "running", "--json"])).runs.length > 0, 20_000, "a running Slow attempt");
      const deleted = await runCli(home, ["jobs", "delete", "Slow", "--json"]);
      expect(deleted.exitCode).toBe(0);
      expect(json(deleted).running).toHaveLength(1);
      const human = await runCli(home, ["jobs", "apply", jobsFile("base.json", BASE_JOBS)]);
      expect(human.exitCode).toBe(0);
    } finally {
      slow.kill("SIGKILL");
      await slow.exited;
    }
    // The human wording, on a second running attempt of the re-created job.
    const again = Bun.spawn([...cliCommand(), "jobs", "trigger", "Slow"], { env: home.env, stdout: "pipe", stderr: "pipe" });
    try {
      await eventually(async () => {
        const id = json(await runCli(home, ["jobs", "show", "Slow", "--json"])).id;
        return json(await runCli(home, ["runs", "--status", "running", "--json"])).runs.some((r: { job_id: string }) => r.job_id === id);
      }, 20_000, "a running attempt of the new Slow");
      const deleted = await runCli(home, ["jobs", "delete", "Slow"]);
      expect(deleted.stdout).toMatch(/its run .* is still running on .*: the delete does not stop it/);
    } finally {
      again.kill("SIGKILL");
      await again.exited;
    }
    expect((await runCli(home, ["jobs", "apply", jobsFile("base.json", BASE_JOBS)])).exitCode).toBe(0);
  }, 60_000);
});

describe("4. the fleet's view, not the CLI's", () => {
  test("a CLI without the agents' secrets or zone shows validity and zone as the agents report them, and labels its own judgement", async () => {
    const agentHome = makeHome({ tz: "Asia/Seoul", heartbeat_sec: 1, dead_after_sec: 3, failover_step_sec: 1, secrets: { SINK: sink.url, TOKEN: "agent-only" } }, "fleetcron-fleet-agent");
    // The operator's CLI: the same store, no TOKEN secret, another zone.
    const cli = makeHome({ tz: "UTC", sqlite_path: join(agentHome.home, "fleetcron.db"), secrets: { SINK: sink.url } }, "fleetcron-fleet-cli");
    try {
      const file = join(agentHome.dir, "secret-jobs.json");
      writeFileSync(file, JSON.stringify([{ name: "Needs Token", hour: 9, minute: 0, url: "{{SINK}}/t", headers: { Authorization: "Bearer {{TOKEN}}" } }]));
      expect((await runCli(agentHome, ["jobs", "apply", file])).exitCode).toBe(0);
      // No agent alive: the CLI's own verdict, labelled as such.
      const alone = json(await runCli(cli, ["jobs", "list", "--json"])).jobs[0];
      expect(alone).toMatchObject({ valid: false, judged_by: "cli", missing_secrets: ["TOKEN"], tz: "UTC", tz_source: "cli" });
      const aloneText = await runCli(cli, ["jobs", "list"]);
      expect(aloneText.stdout).toContain(`"Needs Token": INVALID as judged with this CLI's config, which lacks secret(s) TOKEN`);
      expect(aloneText.stdout).toContain("this CLI's tz (no live agent reports its zone)");

      const agent = startAgent(agentHome, "fleet-view");
      try {
        await agent.waitForLog("serial", 20_000);
        await eventually(async () => json(await runCli(cli, ["machines", "--json"])).machines.some((m: { alive: boolean }) => m.alive), 10_000, "a live agent");
        const seen = json(await runCli(cli, ["jobs", "list", "--json"])).jobs[0];
        expect(seen).toMatchObject({ valid: true, judged_by: "agents", tz: "Asia/Seoul", tz_source: "agents" });
        expect(seen.next_fire).toMatch(/T00:00:00\.000Z$/); // 09:00 in Seoul
        const text = await runCli(cli, ["jobs", "list"]);
        expect(text.stdout).not.toContain("INVALID");
        expect(text.stdout).toContain("run in Asia/Seoul, the agents' zone");
        const show = await runCli(cli, ["jobs", "show", "Needs Token"]);
        expect(show.stdout).toContain("(Asia/Seoul, the agents' zone)");
        const next = json(await runCli(cli, ["jobs", "next", "Needs Token", "--count", "1", "--json"]));
        expect(next.tz).toBe("Asia/Seoul");
      } finally {
        await agent.stop();
      }
    } finally {
      cli.cleanup();
      agentHome.cleanup();
    }
  }, 60_000);
});

describe("5. progress and interruption", () => {
  test("jobs trigger prints each request, answer and retry wait on stderr as it happens; the result on stdout", async () => {
    const result = await runCli(home, ["jobs", "trigger", "Flaky", "--json"]);
    expect(result.exitCode).toBe(0);
    expect(json(result).status).toBe("success");
    const lines = result.stderr.split("\n");
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/→ POST .*\/flaky$/)).toBeGreaterThanOrEqual(0);
    expect(at(/← HTTP 503/)).toBeGreaterThan(at(/→ POST .*\/flaky$/));
    expect(at(/waiting 0\.\d s before the next try/)).toBeGreaterThan(at(/← HTTP 503/));
    expect(at(/→ POST .*\/flaky \(try 3\)/)).toBeGreaterThan(at(/waiting/));
    expect(at(/← HTTP 200/)).toBeGreaterThan(at(/\(try 3\)/));
  }, 30_000);

  test("Ctrl-C during jobs trigger exits 130 and the record says the operator interrupted it", async () => {
    const proc = Bun.spawn([...cliCommand(), "jobs", "trigger", "Slow", "--json"], { env: home.env, stdout: "pipe", stderr: "pipe" });
    let stderr = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) stderr += decoder.decode(chunk);
    })();
    await eventually(() => stderr.includes("→ GET"), 20_000, "the request line");
    proc.kill("SIGINT");
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    await reading;
    expect(code).toBe(130);
    const run = JSON.parse(stdout);
    expect(run.status).toBe("error");
    expect(run.error).toContain("interrupted by the operator");
    const shown = await runCli(home, ["runs", "show", run._id]);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain("interrupted by the operator (Ctrl-C)");
    expect(shown.stdout).not.toContain("running");
  }, 30_000);

  test("status with the store down: connecting to … (timeout 10 s), then what is known locally, exit 1", async () => {
    const down = join(home.dir, "down.json");
    writeFileSync(down, JSON.stringify({ mongodb_uri: "mongodb://ops:hunter2@127.0.0.1:1/?directConnection=true" }), { mode: 0o600 });
    const result = await runCli(home, ["--config", down, "status"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("connecting to mongodb://ops:***@127.0.0.1:1/?directConnection=true (timeout 10 s)");
    expect(result.stdout).toContain("UNREACHABLE");
    expect(result.stdout).toContain(`home:     ${home.home}`);
    expect(result.stdout + result.stderr).not.toContain("hunter2");
  }, 30_000);
});

describe("with an agent: drain --wait, a dead agent", () => {
  test("a bare `fleetcron` (global flags only) starts the agent", async () => {
    const logPath = join(home.dir, "bare.log");
    const { openSync, closeSync } = await import("node:fs");
    const fd = openSync(logPath, "a");
    const proc = Bun.spawn([...cliCommand(), "--config", home.configPath], { env: home.env, stdout: fd, stderr: fd, stdin: "ignore" });
    closeSync(fd);
    try {
      await eventually(() => readFileSync(logPath, "utf8").includes("serial"), 20_000, "the agent's serial line");
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  }, 30_000);

  test("drain --wait waits until the agent has stopped; a killed agent shows dead", async () => {
    const agent = startAgent(home, "first-day");
    try {
      await agent.waitForLog("serial", 20_000);
      const machines = json(await runCli(home, ["machines", "--json"])).machines;
      const id = machines[0].machine_id as string;
      // A near miss of a real id is suggested.
      const typo = await runCli(home, ["drain", `${id}x`]);
      expect(typo.exitCode).toBe(1);
      expect(typo.stderr).toContain(`did you mean "${id}"?`);
      // With an agent alive, a write does not warn.
      const write = await runCli(home, ["jobs", "disable", "Flaky"]);
      expect(write.stderr).not.toContain("no agent is alive");
      const drained = await runCli(home, ["drain", id, "--wait", "--json"]);
      expect(drained.exitCode).toBe(0);
      expect(json(drained)).toMatchObject({ target: id, stopped: true });
      expect(agent.proc.exitCode).not.toBeNull();
    } finally {
      await agent.stop();
    }
    const second = startAgent(home, "first-day-2");
    try {
      await second.waitForLog("serial", 20_000);
      second.proc.kill("SIGKILL");
      await second.proc.exited;
      await eventually(async () => json(await runCli(home, ["machines", "--json"])).machines.some((m: { state: string }) => m.state === "dead"), 15_000, "a dead machine");
      const listing = await runCli(home, ["machines"]);
      expect(listing.stdout).toMatch(/\bdead\b/);
    } finally {
      await second.stop();
    }
    expect((await runCli(home, ["jobs", "enable", "Flaky"])).exitCode).toBe(0);
  }, 90_000);
});

describe("6. log_format json", () => {
  test("an attempt's log line carries job, run id, scheduled instant, machine, status and duration as fields", async () => {
    const jsonHome = makeHome({ tz: "UTC", log_format: "json", heartbeat_sec: 1, dead_after_sec: 3, failover_step_sec: 1, secrets: { SINK: sink.url } }, "fleetcron-json-log");
    try {
      expect((await runCli(jsonHome, ["jobs", "apply", join(home.dir, "every-second.json")])).exitCode).toBe(0);
      const agent = startAgent(jsonHome, "json-log");
      try {
        await agent.waitForLog('"status":"success"', 20_000);
      } finally {
        await agent.stop();
      }
      const line = agent.log().split("\n").filter((l) => l.includes('"status":"success"')).map((l) => JSON.parse(l))[0];
      expect(line).toMatchObject({ level: "info", job: "Tick", trigger: "schedule", status: "success" });
      expect(line.run_id).toContain("@");
      expect(line.scheduled_for).toMatch(/Z$/);
      expect(typeof line.machine_id).toBe("string");
      expect(typeof line.duration_ms).toBe("number");
      expect(line.msg).toContain("Tick @ ");
    } finally {
      jsonHome.cleanup();
    }
  }, 60_000);
});

describe("6. readable output", () => {
  test("wide names are truncated with an ellipsis and columns line up by display width", async () => {
    const wide = "日本語のとても長いジョブの名前です日本語のとても長いジョブ🚀";
    expect((await runCli(home, ["jobs", "apply", jobsFile("wide.json", [...BASE_JOBS, { name: wide, every: "1h", url: "{{SINK}}/wide" }])])).exitCode).toBe(0);
    const list = await runCli(home, ["jobs", "list"]);
    const lines = list.stdout.split("\n");
    const row = lines.find((l) => l.startsWith("日本語"))!;
    expect(row).toContain("…");
    expect(row).not.toContain("🚀");
    const header = lines[0]!;
    const column = (line: string, text: string) => Bun.stringWidth(line.slice(0, line.indexOf(text)));
    expect(column(row, "active")).toBe(column(header, "STATE"));
    expect((await runCli(home, ["jobs", "delete", wide])).exitCode).toBe(0);
  }, 30_000);

  test("NEXT is local time with its offset; --json keeps UTC", async () => {
    const list = await runCli(home, ["jobs", "list"]);
    expect(list.stdout.split("\n").find((l) => l.startsWith("Daily Report") || l.startsWith("Morning Report"))).toMatch(/\d{4}-\d\d-\d\d 09:30:00 (\S+ )?\(\+09:00\) \(in \d+ (s|min|h)\)/);
    const data = json(await runCli(home, ["jobs", "list", "--json"]));
    expect(data.jobs[0].next_fire).toMatch(/Z$/);
  }, 30_000);

  test("runs show RUN_ID: each step in tries, no phrase said twice", async () => {
    const run = json(await runCli(home, ["jobs", "trigger", "Flaky", "--json"]));
    const shown = await runCli(home, ["runs", "show", run._id]);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain(`run ${run._id}: Flaky, success`);
    expect(shown.stdout).toMatch(/Flaky: success \(HTTP 200, 3 tries, \d+ ms\)/);
    expect(shown.stdout).not.toContain("attempts");
    const unknown = await runCli(home, ["runs", "show", "nope"]);
    expect(unknown.exitCode).toBe(1);
  }, 30_000);
});

describe("7. config changes that say what they did", () => {
  test("reload-config logs what it applied and what needs a restart, and applies log_level live", async () => {
    const settings = { tz: "UTC", log_level: "info", heartbeat_sec: 1, dead_after_sec: 3, failover_step_sec: 1, secrets: { SINK: sink.url } };
    const cfgHome = makeHome(settings, "fleetcron-reload-config");
    try {
      expect((await runCli(cfgHome, ["jobs", "apply", join(home.dir, "every-second.json")])).exitCode).toBe(0);
      const agent = startAgent(cfgHome, "reload-config");
      try {
        await agent.waitForLog("Tick @ ", 20_000);
        writeFileSync(cfgHome.configPath, JSON.stringify({ ...settings, log_level: "warn", http_port: 0, max_concurrent_runs: 7, secrets: { ...settings.secrets, EXTRA: "value-not-logged" } }), { mode: 0o600 });
        const reloaded = await runCli(cfgHome, ["reload-config", "--wait"]);
        expect(reloaded.exitCode).toBe(0);
        await agent.waitForLog("reload-config: applied", 10_000);
        const log = agent.log();
        expect(log).toContain('log_level ("info" → "warn")');
        expect(log).toContain("max_concurrent_runs (50 → 7)");
        expect(log).toContain("secrets (1 changed: EXTRA; values not shown)");
        expect(log).not.toContain("value-not-logged");
        expect(log).toContain("http_port (unset → 0) needs a restart");
        // Live: the info lines of each Tick stop.
        const ticks = () => agent.log().split("Tick @ ").length;
        const before = ticks();
        await Bun.sleep(2500);
        expect(ticks()).toBe(before);
      } finally {
        await agent.stop();
      }
    } finally {
      cfgHome.cleanup();
    }
  }, 60_000);

  test("the world-readable warning is given by run and config check, not by every command", async () => {
    const { chmodSync } = await import("node:fs");
    chmodSync(home.configPath, 0o644);
    try {
      expect((await runCli(home, ["jobs", "list"])).stderr).not.toContain("readable by other users");
      expect((await runCli(home, ["config", "check"])).stderr).toContain("readable by other users");
    } finally {
      chmodSync(home.configPath, 0o600);
    }
  }, 30_000);
});

describe("8. validation gaps", () => {
  test("never-firing cron, non-HTTP method, alert without on_failure; jobs from 1 with the file's line", async () => {
    const file = jobsFile(
      "gaps.json",
      `{
  "jobs": [
    { "name": "Good", "every": "1m", "url": "http://127.0.0.1:1/x" },
    {
      "name": "Never",
      "cron": "0 0 31 2 *",
      "url": "http://127.0.0.1:1/x"
    },
    { "name": "Verb", "every": "1m", "method": "FETCH", "url": "http://127.0.0.1:1/x" },
    { "name": "Alerty", "every": "1m", "alert_after_sec": 60,
      "url": "http://127.0.0.1:1/x" },
    { "every": "1m", "url": "http://127.0.0.1:1/x" }
  ]
}
`,
    );
    const result = await runCli(home, ["jobs", "validate", file]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`${file}:6: job "Never" › cron: cron expression "0 0 31 2 *" can never fire`);
    expect(result.stdout).toContain(`${file}:9: job "Verb" › method: must be an HTTP method`);
    expect(result.stdout).toContain(`${file}:12: job #5 › name: is required`);
    expect(result.stderr).toContain(`${file}:10: job "Alerty" › alert_after_sec: is set but the job has no on_failure steps`);
    const data = json(await runCli(home, ["jobs", "validate", file, "--json"]));
    expect(data.problems.map((p: { index: number; line: number }) => [p.index, p.line])).toEqual([[2, 6], [3, 9], [5, 12]]);
    expect(data.warnings).toHaveLength(1);
  }, 30_000);
});

describe("9. the quick start succeeds", () => {
  test("every example job succeeds against the receiver the README suggests", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const quick = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("## Commands"));
    const receiver = quick.match(/^bun (config\/\S+\.ts)/m);
    expect(receiver).not.toBeNull();
    const config = JSON.parse(readFileSync(join(REPO, "config/fleetcron.config.example.json"), "utf8"));
    const examples = JSON.parse(readFileSync(join(REPO, "config/jobs.example.json"), "utf8")).jobs as { name: string }[];
    // The README triggers every example job but Ping, which the agent fires every 10 s.
    for (const job of examples.filter((j) => j.name !== "Ping")) expect(quick).toContain(`jobs trigger "${job.name}"`);

    const proc = Bun.spawn(["bun", join(REPO, receiver![1]!), "0"], { stdout: "pipe", stderr: "inherit" });
    const reader = proc.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const url = first.match(/http:\/\/127\.0\.0\.1:\d+/)![0];
    const quickHome = makeHome({ ...config, secrets: { ...config.secrets, BASE_URL: url }, jobs_file: undefined }, "fleetcron-quick");
    try {
      expect((await runCli(quickHome, ["jobs", "apply", join(REPO, "config/jobs.example.json")])).exitCode).toBe(0);
      for (const job of examples) {
        const run = await runCli(quickHome, ["jobs", "trigger", job.name, "--json"]);
        expect({ job: job.name, status: json(run).status, exit: run.exitCode }).toEqual({ job: job.name, status: "success", exit: 0 });
      }
    } finally {
      quickHome.cleanup();
      proc.kill();
      await proc.exited;
    }
  }, 60_000);
});

describe("the README and --help agree", () => {
  test("every command is in the README's command table, with each of its own flags", async () => {
    const { main } = await import("../../src/cli/index.ts");
    const { subCommandsOf } = await import("../../src/cli/_strict.ts");
    const { globalArgs } = await import("../../src/cli/_globals.ts");
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const rows = readme.split("\n").filter((l) => l.startsWith("| `fleetcron"));
    const leaves: { path: string[]; flags: string[] }[] = [];
    const walk = async (cmd: any, path: string[]) => {
      const subs = await subCommandsOf(cmd);
      if (cmd.run) {
        const args = (typeof cmd.args === "function" ? await cmd.args() : cmd.args) ?? {};
        leaves.push({ path, flags: Object.entries(args).filter(([k, d]: [string, any]) => d.type !== "positional" && !(k in globalArgs)).map(([k]) => `--${k}`) });
      }
      for (const [name, sub] of Object.entries(subs)) await walk(sub, [...path, name]);
    };
    await walk(main, []);
    expect(leaves.length).toBeGreaterThan(15);
    const missing: string[] = [];
    for (const leaf of leaves) {
      const [group, ...rest] = leaf.path;
      const named = (cell: string) =>
        cell.includes(`\`fleetcron ${leaf.path.join(" ")}`) ||
        (rest.length > 0 && (cell.includes(`\`${leaf.path.join(" ")}`) || (cell.includes(`\`fleetcron ${group} `) && new RegExp(`(\`|· )${rest.join(" ")}\\b`).test(cell))));
      const row = rows.find((r) => named(r.split(" | ")[0]!));
      if (!row) {
        missing.push(`command \`fleetcron ${leaf.path.join(" ")}\` has no row`);
        continue;
      }
      // Service flags are documented in the README's "Service install" section.
      if (group === "service") continue;
      for (const flag of leaf.flags) if (!row.split(" | ")[0]!.includes(flag)) missing.push(`\`fleetcron ${leaf.path.join(" ")}\`: ${flag} is not in its row`);
    }
    expect(missing).toEqual([]);
  });
});
