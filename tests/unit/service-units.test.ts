import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchdPlist } from "../../src/service/launchd.ts";
import { agentArgv, describeStep, GENERATORS, type ServiceInput } from "../../src/service/index.ts";
import { systemdUnit, systemdWord } from "../../src/service/systemd.ts";
import { encodeUtf16, taskXml } from "../../src/service/windows.ts";

/**
 * Every generated definition is read back by a real parser of its format: systemd-analyze verify
 * (else a section/key parser), python's plistlib (an expat-based plist reader) or xmllint for the
 * plist, and both for the UTF-16 task XML. Paths carry spaces, quotes, %, $, & and < on purpose.
 */
const CI = process.env.CI === "true";
const which = (tool: string) => Bun.which(tool);
const PYTHON = which("python3");
const XMLLINT = which("xmllint");
const SYSTEMD_ANALYZE = which("systemd-analyze");

let dir: string;
let binary: string;
let input: ServiceInput;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetcron service-units "));
  // A real executable: `systemd-analyze verify` checks that ExecStart's program exists.
  mkdirSync(join(dir, "opt & <bin>"), { recursive: true });
  binary = join(dir, "opt & <bin>", "fleet cron 100%$x");
  writeFileSync(binary, "#!/bin/sh\nexit 0\n");
  chmodSync(binary, 0o755);
  input = {
    binaryPath: binary,
    configPath: join(dir, 'my "conf" $HOME', "config.json"),
    home: join(dir, "home 50%"),
    scope: "system",
    shutdownTimeoutSec: 30,
    userHome: join(dir, "user"),
    uid: 501,
  };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: string[], stdin?: string) {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Sections and their key=value lines, as systemd reads a unit (comments and blank lines skipped). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | null = null;
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = sections[header[1]!] = {};
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`not a unit line: ${line}`);
    (current[kv[1]!] ??= []).push(kv[2]!);
  }
  return sections;
}

/** systemd.syntax: words split on spaces, "…"/'…' quoted with C escapes; %% → %, and $$ → $ in the arguments (not the program). */
function systemdWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === " ") i++;
    if (i >= line.length) break;
    let word = "";
    const quote = line[i] === '"' || line[i] === "'" ? line[i++] : null;
    while (i < line.length && (quote ? line[i] !== quote : line[i] !== " ")) {
      if (line[i] === "\\") {
        const next = line[i + 1]!;
        word += next === "n" ? "\n" : next === "t" ? "\t" : next;
        i += 2;
      } else word += line[i++];
    }
    if (quote) i++;
    const unescaped = word.replaceAll("%%", "%");
    words.push(words.length === 0 ? unescaped : unescaped.replaceAll("$$", "$"));
  }
  return words;
}

/** CommandLineToArgvW, as a Windows program splits its command line. */
function windowsArgv(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (i >= line.length) break;
    let arg = "";
    let quoted = false;
    while (i < line.length && (quoted || (line[i] !== " " && line[i] !== "\t"))) {
      if (line[i] === "\\") {
        let k = 0;
        while (line[i] === "\\") k++, i++;
        if (line[i] === '"') {
          arg += "\\".repeat(Math.floor(k / 2));
          if (k % 2 === 1) arg += '"', i++;
        } else arg += "\\".repeat(k);
      } else if (line[i] === '"') quoted = !quoted, i++;
      else arg += line[i++];
    }
    args.push(arg);
  }
  return args;
}

describe("systemd unit", () => {
  test("has the settings a long-running agent needs, and ExecStart splits back into the agent's argv", () => {
    const unit = parseUnit(systemdUnit({ ...input, user: "fleetcron" }));
    expect(Object.keys(unit)).toEqual(["Unit", "Service", "Install"]);
    expect(unit.Unit!.After).toEqual(["network-online.target"]);
    expect(unit.Unit!.Wants).toEqual(["network-online.target"]);
    const service = unit.Service!;
    expect(service.Restart).toEqual(["always"]);
    expect(service.RestartSec).toEqual(["10"]);
    expect(service.KillSignal).toEqual(["SIGTERM"]);
    expect(service.User).toEqual(["fleetcron"]);
    expect(Number(service.TimeoutStopSec![0])).toBeGreaterThan(30);
    expect(systemdWords(service.ExecStart![0]!)).toEqual([binary, "--config", input.configPath!, "run"]);
    expect(systemdWords(service.Environment![0]!)).toEqual([`FLEETCRON_HOME=${input.home}`]);
    expect(unit.Install!.WantedBy).toEqual(["multi-user.target"]);
  });

  test("a --user unit lives under ~/.config/systemd/user, has no User= and is wanted by default.target", () => {
    const gen = GENERATORS.linux;
    const file = gen.definition({ ...input, scope: "user" });
    expect(file.path).toBe(join(input.userHome, ".config/systemd/user/fleetcron.service"));
    const unit = parseUnit(file.content);
    expect(unit.Service!.User).toBeUndefined();
    expect(unit.Install!.WantedBy).toEqual(["default.target"]);
    expect(gen.install({ ...input, scope: "user" }, { replacing: false, homeExists: true }).flatMap((s) => (s.kind === "run" ? [s.command.argv.join(" ")] : []))).toEqual([
      "systemctl --user daemon-reload",
      "systemctl --user enable --now fleetcron.service",
    ]);
  });

  test("words are quoted only when needed; % and $ are always doubled", () => {
    expect(systemdWord("/usr/local/bin/fleetcron")).toBe("/usr/local/bin/fleetcron");
    expect(systemdWord("/opt/a b")).toBe('"/opt/a b"');
    expect(systemdWord("/opt/50%")).toBe("/opt/50%%");
    expect(systemdWord("/opt/$x")).toBe('"/opt/$$x"');
    expect(systemdWord("/opt/$x", "program")).toBe('"/opt/$x"');
    expect(systemdWord('/opt/"q"\\')).toBe('"/opt/\\"q\\"\\\\"');
  });

  test("system-wide install: daemon-reload, enable --now; a replaced unit also try-restarts", () => {
    const runs = (replacing: boolean) => GENERATORS.linux.install(input, { replacing, homeExists: true }).flatMap((s) => (s.kind === "run" ? [s.command.argv.join(" ")] : []));
    expect(runs(false)).toEqual(["systemctl daemon-reload", "systemctl enable --now fleetcron.service"]);
    expect(runs(true)).toEqual(["systemctl daemon-reload", "systemctl enable --now fleetcron.service", "systemctl try-restart fleetcron.service"]);
  });

  test("bad input is refused: relative paths, newlines, --run-as with --user", () => {
    expect(() => systemdUnit({ ...input, binaryPath: "fleetcron" })).toThrow("must be absolute");
    expect(() => systemdUnit({ ...input, home: "/x\nExecStartPre=/bin/evil" })).toThrow("control character");
    expect(() => systemdUnit({ ...input, scope: "user", user: "fleetcron" })).toThrow("--run-as needs a system-wide unit");
  });

  test.skipIf(!SYSTEMD_ANALYZE)("systemd-analyze verify accepts the unit, system-wide and per user", () => {
    for (const variant of [{ ...input, user: "root" }, { ...input, scope: "user" as const }]) {
      const path = join(dir, "fleetcron.service");
      writeFileSync(path, systemdUnit(variant));
      const result = run(["systemd-analyze", "verify", "--man=no", path]);
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
    }
  });

  test.skipIf(!SYSTEMD_ANALYZE)("(control) systemd-analyze verify does catch an unquoted path with a space", () => {
    const path = join(dir, "broken.service");
    writeFileSync(path, systemdUnit(input).replace(/^ExecStart=.*$/m, `ExecStart=${binary} run`));
    const result = run(["systemd-analyze", "verify", "--man=no", path]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain("is not executable");
  });
});

const xmlParserMissing = !PYTHON && !XMLLINT;
if (xmlParserMissing && CI) throw new Error("service unit tests need xmllint (apt-get install libxml2-utils) or python3 to parse the plist and task XML");

function xmllint(path: string) {
  if (!XMLLINT) return;
  const result = run(["xmllint", "--noout", "--nonet", path]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
}

describe.skipIf(xmlParserMissing)("launchd plist", () => {
  test("is a well-formed plist with the agent's argv, FLEETCRON_HOME, restarts and log paths", () => {
    const variant = { ...input, scope: "system" as const, user: "_fleetcron" };
    const path = join(dir, "com.fleetcron.agent.plist");
    writeFileSync(path, launchdPlist(variant));
    xmllint(path);
    if (!PYTHON) return;
    const parsed = run(["python3", "-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))", path]);
    expect(parsed.stderr).toBe("");
    expect(JSON.parse(parsed.stdout)).toEqual({
      Label: "com.fleetcron.agent",
      // The agent keeps its own rotated log (launchd never rotates StandardOutPath).
      ProgramArguments: [binary, "--config", input.configPath, "--log-file", join(input.home, "logs", "fleetcron.log"), "run"],
      EnvironmentVariables: { FLEETCRON_HOME: input.home },
      UserName: "_fleetcron",
      RunAtLoad: true,
      KeepAlive: true,
      ThrottleInterval: 10,
      ExitTimeOut: 45,
      StandardErrorPath: join(input.home, "logs", "launchd-stderr.log"),
    });
  });

  test("a config that names log_file is used as it is: no --log-file, and status reads the log's place from the definition", () => {
    const gen = GENERATORS.darwin;
    const own = { ...input, logFile: "/var/log/fleetcron/agent.log" };
    expect(launchdPlist(own)).not.toContain("--log-file");
    expect(gen.logs(own)).toStartWith("/var/log/fleetcron/agent.log");
    expect(gen.logsFromDefinition!(launchdPlist(input))).toStartWith(join(input.home, "logs", "fleetcron.log"));
    expect(gen.logsFromDefinition!(launchdPlist(own))).toBeNull();
    // A plist from before the agent kept its own log named launchd's file.
    expect(gen.logsFromDefinition!("<key>StandardErrorPath</key>\n  <string>/old/fleetcron.log</string>")).toStartWith("/old/fleetcron.log");
  });

  test("a LaunchAgent goes to ~/Library/LaunchAgents and is bootstrapped into gui/<uid>; --system uses the system domain", () => {
    const gen = GENERATORS.darwin;
    const agent = { ...input, scope: "user" as const };
    expect(gen.definition(agent).path).toBe(join(input.userHome, "Library/LaunchAgents/com.fleetcron.agent.plist"));
    const runs = (i: ServiceInput) => gen.install(i, { replacing: false, homeExists: false }).flatMap((s) => (s.kind === "run" ? [s.command.argv.slice(0, 3).join(" ")] : []));
    expect(runs(agent)).toEqual(["launchctl enable gui/501/com.fleetcron.agent", "launchctl bootstrap gui/501"]);
    expect(gen.definition(input).path).toBe("/Library/LaunchDaemons/com.fleetcron.agent.plist");
    expect(runs(input)).toEqual(["launchctl enable system/com.fleetcron.agent", "launchctl bootstrap system"]);
    // launchd does not create the log folder itself.
    expect(gen.install(agent, { replacing: false, homeExists: false }).some((s) => s.kind === "mkdir" && s.path === join(input.home, "logs"))).toBe(true);
  });
});

const WIN: ServiceInput = {
  binaryPath: "C:\\Program Files\\FleetCron\\fleetcron.exe",
  configPath: 'C:\\ProgramData\\Fleet & Cron\\conf "x"\\config.json',
  home: "C:\\ProgramData\\FleetCron <home>\\",
  scope: "system",
  userHome: "C:\\Users\\ops",
};

/** Leaf elements of the task XML (namespace dropped), read back by python's ElementTree from the UTF-16 bytes. */
function taskLeaves(path: string): Record<string, string[]> {
  const script = [
    "import json, sys, xml.etree.ElementTree as ET",
    "out = {}",
    "for e in ET.parse(sys.argv[1]).iter():",
    "    if len(e) == 0: out.setdefault(e.tag.split('}')[1], []).append(e.text or '')",
    "print(json.dumps(out))",
  ].join("\n");
  const result = run(["python3", "-c", script, path]);
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout);
}

describe.skipIf(xmlParserMissing)("Task Scheduler XML", () => {
  test("is UTF-16 with a BOM and well-formed, with every setting a never-ending task needs", () => {
    const path = join(dir, "fleetcron-task.xml");
    const bytes = encodeUtf16(taskXml(WIN));
    expect([...bytes.subarray(0, 2)]).toEqual([0xff, 0xfe]);
    writeFileSync(path, bytes);
    xmllint(path);
    if (!PYTHON) return;
    const leaves = taskLeaves(path);
    expect(leaves.Enabled).toContain("true");
    expect(leaves.ExecutionTimeLimit).toEqual(["PT0S"]);
    expect(leaves.MultipleInstancesPolicy).toEqual(["IgnoreNew"]);
    expect(leaves.StartWhenAvailable).toEqual(["true"]);
    expect(leaves.Count).toEqual(["255"]); // RestartOnFailure, at the schema's maximum (unsignedByte)
    expect(leaves.UserId).toEqual(["S-1-5-18"]); // SYSTEM: runs whether anyone is logged on or not
    expect(leaves.DisallowStartIfOnBatteries).toEqual(["false"]);
    expect(leaves.WorkingDirectory).toEqual([WIN.home]);
    // Command + Arguments, as Windows splits them, are exactly the agent's argv.
    // A task has no stdout: the agent logs to a file under its home.
    const logFile = "C:\\ProgramData\\FleetCron <home>\\logs\\fleetcron.log";
    expect(windowsArgv(`${leaves.Command![0]} ${leaves.Arguments![0]}`)).toEqual([WIN.binaryPath, "--config", WIN.configPath!, "--log-file", logFile, "run"]);
    expect(GENERATORS.windows.logs(WIN)).toStartWith(`${logFile} (Get-Content -Wait "${logFile}")`);
  });

  test("a config's own log_file replaces the default: no --log-file in the task, status names that file", () => {
    const own = { ...WIN, logFile: "D:\\logs\\fleetcron.log" };
    expect(taskXml(own)).not.toContain("--log-file");
    expect(GENERATORS.windows.logs(own)).toStartWith("D:\\logs\\fleetcron.log (Get-Content -Wait D:\\logs\\fleetcron.log)");
  });

  test("the required elements are there (read as text too, for hosts without python3)", () => {
    const xml = taskXml(WIN);
    for (const element of ["<BootTrigger>", "<ExecutionTimeLimit>PT0S</ExecutionTimeLimit>", "<RestartOnFailure>", "<MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>", "<StartWhenAvailable>true</StartWhenAvailable>"]) {
      expect(xml).toContain(element);
    }
  });

  test("--user runs as the account with an S4U logon (no stored password)", () => {
    const path = join(dir, "fleetcron-task-user.xml");
    writeFileSync(path, encodeUtf16(taskXml({ ...WIN, scope: "user", user: "CORP\\ops" })));
    xmllint(path);
    if (!PYTHON) return;
    const leaves = taskLeaves(path);
    expect(leaves.UserId).toEqual(["CORP\\ops"]);
    expect(leaves.LogonType).toEqual(["S4U"]);
  });

  test("created with schtasks /Create /XML, started now; FLEETCRON_HOME set with setx since a task has no environment", () => {
    const steps = GENERATORS.windows.install(WIN, { replacing: false, homeExists: true });
    const runs = steps.flatMap((s) => (s.kind === "run" ? [s.command.argv] : []));
    expect(runs).toEqual([
      ["setx", "FLEETCRON_HOME", WIN.home, "/M"],
      ["schtasks", "/Create", "/TN", "FleetCron", "/XML", "C:\\ProgramData\\FleetCron <home>\\fleetcron-task.xml", "/F"],
      ["schtasks", "/Run", "/TN", "FleetCron"],
    ]);
    expect(describeStep(steps.find((s) => s.kind === "run" && s.command.argv[1] === "/Create")!, "windows")).toStartWith('schtasks /Create /TN FleetCron /XML "C:\\ProgramData\\FleetCron <home>\\fleetcron-task.xml" /F');
    // The account's default home needs no variable.
    const user = { ...WIN, scope: "user" as const, user: "CORP\\ops", home: "C:\\Users\\ops\\.fleetcron" };
    expect(GENERATORS.windows.install(user, { replacing: false, homeExists: true }).some((s) => s.kind === "run" && s.command.argv[0] === "setx")).toBe(false);
  });

  test("refuses a POSIX path, and --run-as with --system", () => {
    expect(() => taskXml({ ...WIN, binaryPath: "/usr/local/bin/fleetcron" })).toThrow("must be absolute for a windows service definition");
    expect(() => taskXml({ ...WIN, user: "ops" })).toThrow("runs the task as SYSTEM");
  });
});

describe("where a service logs (issue 17)", () => {
  test("systemd: the journal, or the config's log_file when it names one (with the journal for startup errors)", () => {
    expect(GENERATORS.linux.logs(input)).toBe("the journal: journalctl -u fleetcron -f");
    expect(GENERATORS.linux.logs({ ...input, scope: "user", logFile: "/srv/fc/agent.log" })).toBe("/srv/fc/agent.log (tail -F /srv/fc/agent.log; startup errors: journalctl --user -u fleetcron -f)");
    // The journal rotates: a unit gets no --log-file of its own.
    expect(systemdUnit(input)).not.toContain("--log-file");
  });
});
