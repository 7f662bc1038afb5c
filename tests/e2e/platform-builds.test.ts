import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { checkPe, checkPeFile, inspectPe, isSystemDll } from "../../scripts/pe-check.ts";
import { eventually } from "../support/cli.ts";
import { startSink, type Sink } from "../support/sink.ts";

/**
 * Every download `bun run build` makes (issue 17), built once for this file, Windows builds signed
 * with a throwaway self-signed certificate made here by openssl:
 * - SHA256SUMS matches the files;
 * - each file is for its OS, CPU and C library (ELF interpreter, Mach-O CPU type);
 * - the Windows exes are well-formed PE32+ x64 console programs importing only system DLLs
 *   (scripts/pe-check.ts; the plain imports also read back by Debian's objdump). Wine 8.0 cannot
 *   start a Bun exe (bcryptprimitives.dll), so they are checked, not run;
 * - `osslsigncode verify` accepts the signature with the certificate trusted, and rejects it for a
 *   tampered copy and with the certificate untrusted;
 * - the linux-x64-baseline build starts: --version, and a short `run` that delivers to a sink.
 * The musl builds need Alpine's libstdc++ and a musl loader, which Debian lacks: checked, not run.
 */
const ROOT = resolve(import.meta.dir, "../..");
const TARGETS = [
  "linux-x64",
  "linux-x64-baseline",
  "linux-x64-musl",
  "linux-arm64",
  "linux-arm64-musl",
  "darwin-x64",
  "darwin-x64-baseline",
  "darwin-arm64",
  "windows-x64",
  "windows-x64-baseline",
];
const fileOf = (target: string) => `fleetcron-${target}${target.startsWith("windows") ? ".exe" : ""}`;

const missingTools = ["openssl", "osslsigncode"].filter((tool) => !Bun.which(tool));
const skipReason = missingTools.length ? `${missingTools.join(" and ")} not installed (.ci/run installs them)` : "";
if (skipReason) {
  if (process.env.CI) throw new Error(`the build, PE and signature checks must run in CI, but ${skipReason}`);
  console.warn(`SKIPPING the platform builds: ${skipReason}`);
}
const canRunBaseline = process.platform === "linux" && process.arch === "x64";

let work: string;
let dist: string;
let certPem: string;
let buildOutput = "";

function run(argv: string[], env: Record<string, string> = {}) {
  const result = Bun.spawnSync(argv, { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { exitCode: result.exitCode, out: `${result.stdout}${result.stderr}` };
}

beforeAll(() => {
  if (skipReason) return;
  work = mkdtempSync(join(tmpdir(), "fleetcron-builds-"));
  dist = join(work, "dist");
  const certDir = join(work, "cert");
  mkdirSync(certDir, { mode: 0o700 });
  const key = join(certDir, "key.pem");
  certPem = join(certDir, "cert.pem");
  const pfx = join(certDir, "codesign.pfx");
  const password = `pw-${crypto.randomUUID()}`;
  const req = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certPem, "-days", "2", "-subj", "/CN=FleetCron CI throwaway", "-addext", "extendedKeyUsage=codeSigning"]);
  if (req.exitCode !== 0) throw new Error(`openssl req failed:\n${req.out}`);
  const p12 = run(["openssl", "pkcs12", "-export", "-inkey", key, "-in", certPem, "-out", pfx, "-passout", "env:PFX_PASSWORD"], { PFX_PASSWORD: password });
  if (p12.exitCode !== 0) throw new Error(`openssl pkcs12 failed:\n${p12.out}`);
  const build = run([process.execPath, join(ROOT, "build.ts"), "--outdir", dist, "--sign-cert", pfx], { FLEETCRON_SIGN_PASSWORD: password });
  buildOutput = build.out;
  if (build.exitCode !== 0) throw new Error(`build.ts failed (${build.exitCode}):\n${build.out}`);
  console.log(buildOutput.trim());
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** ELF: the CPU (e_machine) and the program interpreter (PT_INTERP), which names the C library. */
function elfInfo(path: string): { machine: number; interpreter: string } {
  const b = readFileSync(path).subarray(0, 64 * 1024);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  expect([...b.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  let interpreter = "";
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== 3) continue; // PT_INTERP
    const offset = Number(v.getBigUint64(ph + 8, true));
    const size = Number(v.getBigUint64(ph + 32, true));
    interpreter = new TextDecoder().decode(b.subarray(offset, offset + size)).replace(/\0+$/, "");
  }
  return { machine: v.getUint16(0x12, true), interpreter };
}

describe.skipIf(Boolean(skipReason))(`bun run build: every download${skipReason ? ` — SKIPPED: ${skipReason}` : ""}`, () => {
  test("writes every target, and SHA256SUMS matches each file", () => {
    expect(readdirSync(dist).sort()).toEqual([...TARGETS.map(fileOf), "SHA256SUMS"].sort());
    const sums = readFileSync(join(dist, "SHA256SUMS"), "utf8").trim().split("\n");
    expect(sums.map((l) => l.split("  ")[1]).sort()).toEqual(TARGETS.map(fileOf).sort());
    for (const line of sums) {
      const [hash, name] = line.split("  ");
      expect({ name, hash }).toEqual({ name, hash: createHash("sha256").update(readFileSync(join(dist, name!))).digest("hex") });
    }
    // The sizes the README's download table lists, for the record.
    console.log(TARGETS.map((t) => `${fileOf(t)}  ${statSync(join(dist, fileOf(t))).size} bytes`).join("\n"));
  }, 60_000);

  test("each Linux and macOS binary is for its CPU and C library", () => {
    const expected: Record<string, { machine: number; interpreter: string }> = {
      "linux-x64": { machine: 0x3e, interpreter: "/lib64/ld-linux-x86-64.so.2" },
      "linux-x64-baseline": { machine: 0x3e, interpreter: "/lib64/ld-linux-x86-64.so.2" },
      "linux-x64-musl": { machine: 0x3e, interpreter: "/lib/ld-musl-x86_64.so.1" },
      "linux-arm64": { machine: 0xb7, interpreter: "/lib/ld-linux-aarch64.so.1" },
      "linux-arm64-musl": { machine: 0xb7, interpreter: "/lib/ld-musl-aarch64.so.1" },
    };
    for (const [target, want] of Object.entries(expected)) expect({ target, ...elfInfo(join(dist, fileOf(target))) }).toEqual({ target, ...want });
    const machO: Record<string, number> = { "darwin-x64": 0x01000007, "darwin-x64-baseline": 0x01000007, "darwin-arm64": 0x0100000c };
    for (const [target, cpu] of Object.entries(machO)) {
      const head = new DataView(readFileSync(join(dist, fileOf(target))).buffer);
      expect({ target, magic: head.getUint32(0, true).toString(16), cpu: head.getUint32(4, true) }).toEqual({ target, magic: "feedfacf", cpu });
    }
    // Baseline is its own runtime, not the AVX2 one renamed.
    expect(readFileSync(join(dist, fileOf("linux-x64-baseline"))).equals(readFileSync(join(dist, fileOf("linux-x64"))))).toBe(false);
  });

  test("the Windows builds are well-formed PE32+ x64 console programs that import only system DLLs", () => {
    for (const target of ["windows-x64", "windows-x64-baseline"]) {
      const path = join(dist, fileOf(target));
      const report = checkPeFile(path);
      console.log(`${fileOf(target)}: PE32+ 0x${report.magic.toString(16)}, machine 0x${report.machine.toString(16)}, subsystem ${report.subsystem}, signed ${report.signed}\n  imports: ${report.imports.join(", ")}\n  delay-loaded: ${report.delayImports.join(", ")}`);
      expect({ target, problems: report.problems }).toEqual({ target, problems: [] });
      expect(report).toMatchObject({ magic: 0x20b, machine: 0x8664, subsystem: 3, signed: true });
      expect(report.imports.map((d) => d.toLowerCase())).toContain("kernel32.dll");
      // A second reader of the plain import table: Debian's binutils.
      if (Bun.which("objdump")) {
        const dump = run(["objdump", "-p", path]);
        expect(dump.out).toContain("file format pei-x86-64");
        const names = [...dump.out.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]);
        expect(names).toEqual(report.imports);
      }
    }
  });

  test("the PE check fails what it should: a Linux binary, a DLL-dependent import, a GUI subsystem, a cut-off file", () => {
    expect(checkPeFile(join(dist, fileOf("linux-x64"))).problems).toEqual(['no "MZ" DOS header: not a Windows executable']);
    expect(isSystemDll("VCRUNTIME140.dll")).toBe(false);
    expect(isSystemDll("api-ms-win-core-synch-l1-2-0.dll")).toBe(true);
    const exe = readFileSync(join(dist, fileOf("windows-x64")));
    const pe = exe.readUInt32LE(0x3c);
    const gui = Buffer.from(exe);
    gui.writeUInt16LE(2, pe + 24 + 68);
    expect(inspectPe(gui).problems.join("\n")).toContain("subsystem is 2, not a console program");
    const renamed = Buffer.from(exe);
    // Every copy of the name, so the import table's is among them.
    for (let at = renamed.indexOf("KERNEL32.dll\0", 0, "latin1"); at !== -1; at = renamed.indexOf("KERNEL32.dll\0", at + 1, "latin1")) renamed.write("MSVCP140.dll\0", at, "latin1");
    expect(inspectPe(renamed).problems.join("\n")).toContain("imports MSVCP140.dll, which is not a Windows system DLL");
    expect(checkPe(exe.subarray(0, 50 * 1024 * 1024)).problems.join("\n")).toMatch(/runs past the end of the file|lies outside the file/);
  });

  test("osslsigncode verify: accepted with the certificate trusted; rejected untrusted, and for a tampered copy", () => {
    for (const target of ["windows-x64", "windows-x64-baseline"]) {
      const path = join(dist, fileOf(target));
      const trusted = run(["osslsigncode", "verify", "-in", path, "-CAfile", certPem]);
      console.log(`osslsigncode verify ${fileOf(target)} -CAfile <throwaway cert>: exit ${trusted.exitCode}\n${trusted.out.split("\n").filter((l) => /Subject:|Signature verification|Message digest|Succeeded|Failed/.test(l)).join("\n")}`);
      expect(trusted.out).toContain("Signature verification: ok");
      expect(trusted.out).toContain("Subject: /CN=FleetCron CI throwaway");
      expect(trusted.exitCode).toBe(0);
    }
    const path = join(dist, fileOf("windows-x64"));
    const untrusted = run(["osslsigncode", "verify", "-in", path, "-CAfile", "/etc/ssl/certs/ca-certificates.crt"]);
    expect(untrusted.exitCode).not.toBe(0);
    const tampered = join(work, "tampered.exe");
    copyFileSync(path, tampered);
    const bytes = readFileSync(tampered);
    const report = inspectPe(bytes);
    const text = report.sections.find((s) => s.name === ".text")!;
    bytes[text.rawOffset + 4096] = bytes[text.rawOffset + 4096]! ^ 0xff;
    writeFileSync(tampered, bytes);
    const broken = run(["osslsigncode", "verify", "-in", tampered, "-CAfile", certPem]);
    expect(broken.out).toContain("MISMATCH");
    expect(broken.exitCode).not.toBe(0);
  });

  describe.skipIf(!canRunBaseline)(`the baseline build starts${canRunBaseline ? "" : " — SKIPPED: not a linux-x64 host"}`, () => {
    let sink: Sink;
    beforeAll(() => {
      sink = startSink();
    });
    afterAll(async () => {
      await sink?.stop();
    });

    test("--version, then a short `run` from an empty folder delivers to a local sink and stops on SIGTERM", async () => {
      const folder = join(work, "baseline");
      mkdirSync(folder);
      const binary = join(folder, "fleetcron");
      copyFileSync(join(dist, fileOf("linux-x64-baseline")), binary);
      chmodSync(binary, 0o755);
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "user"), FLEETCRON_HOME: join(work, "baseline-home"), NO_COLOR: "1", TZ: "UTC" };
      const spawn = (args: string[]) => {
        const r = Bun.spawnSync([binary, ...args], { cwd: folder, env, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: 15_000 });
        return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
      };
      const version = spawn(["--version"]);
      console.log(`fleetcron-linux-x64-baseline --version: ${version.stdout.trim()}`);
      expect(version).toMatchObject({ exitCode: 0, stderr: "" });
      expect(version.stdout).toStartWith(`fleetcron ${pkg.version}`);
      expect(version.stdout.trim()).toEndWith("linux-x64-baseline");

      const jobs = join(work, "baseline-jobs.json");
      writeFileSync(jobs, JSON.stringify([{ name: "Baseline tick", every: "1s", url: `${sink.url}/baseline` }]));
      const applied = spawn(["jobs", "apply", jobs]);
      // stderr says which store was used and that no agent is alive yet: information, no error.
      expect({ exitCode: applied.exitCode, errors: applied.stderr.split("\n").filter((l) => / (error|fatal) /.test(l)) }).toEqual({ exitCode: 0, errors: [] });
      const logFile = join(work, "baseline-home", "logs", "fleetcron.log");
      const agent = Bun.spawn([binary, "--log-file", logFile, "run"], { cwd: folder, env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      try {
        await eventually(() => sink.deliveries.filter((d) => d.path === "/baseline").length >= 2 || agent.exitCode !== null, 25_000, "2 deliveries from the baseline build");
        expect(agent.exitCode).toBeNull();
      } finally {
        agent.kill("SIGTERM");
      }
      expect(await agent.exited).toBe(0);
      // The agent's log went to its file (mode 600), not to stderr.
      expect(await new Response(agent.stderr).text()).toBe("");
      expect((statSync(logFile).mode & 0o777).toString(8)).toBe("600");
      expect(readFileSync(logFile, "utf8")).toContain("info");
    }, 60_000);
  });
});
