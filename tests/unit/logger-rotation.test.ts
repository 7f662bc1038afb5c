import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLogger, RotatingFile, type LogSink } from "../../src/core/logger.ts";

/**
 * `log_file` rotation (issue 17): at the size, `log_keep` files kept, mode 600, the stderr format,
 * and no line lost or torn across rotations, at 1,000 lines/s and when the writer is SIGKILLed.
 */
const LOGGER = resolve(import.meta.dir, "../../src/core/logger.ts");
let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fleetcron-log-"));
  path = join(dir, "logs", "fleetcron.log");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Every file of the log, oldest first: `.N` … `.1`, then the current one. */
function logFiles(): string[] {
  const rotated = readdirSync(join(dir, "logs"))
    .map((name) => /^fleetcron\.log\.(\d+)$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => b - a)
    .map((n) => `${path}.${n}`);
  return existsSync(path) ? [...rotated, path] : rotated;
}

const line = (i: number) => `line ${String(i).padStart(5, "0")} ${"x".repeat(88)}\n`; // 100 bytes

describe("RotatingFile", () => {
  test("rotates before a line would pass the size: fleetcron.log.1 holds the full file, no file passes the limit", () => {
    const file = new RotatingFile({ path, maxBytes: 1000, keep: 5 });
    for (let i = 0; i < 10; i++) file.write(line(i));
    expect(existsSync(`${path}.1`)).toBe(false);
    expect(statSync(path).size).toBe(1000);
    file.write(line(10));
    file.close();
    expect(readFileSync(`${path}.1`, "utf8")).toBe(Array.from({ length: 10 }, (_, i) => line(i)).join(""));
    expect(readFileSync(path, "utf8")).toBe(line(10));
  });

  test("keeps log_keep rotated files and drops the oldest", () => {
    const file = new RotatingFile({ path, maxBytes: 1000, keep: 3 });
    for (let i = 0; i < 100; i++) file.write(line(i)); // 10 files' worth
    file.close();
    expect(readdirSync(join(dir, "logs")).sort()).toEqual(["fleetcron.log", "fleetcron.log.1", "fleetcron.log.2", "fleetcron.log.3"]);
    // The newest 40 lines survive, in order.
    expect(logFiles().map((f) => readFileSync(f, "utf8")).join("")).toBe(Array.from({ length: 40 }, (_, i) => line(60 + i)).join(""));
  });

  test("log_keep 0 keeps only the current file", () => {
    const file = new RotatingFile({ path, maxBytes: 1000, keep: 0 });
    for (let i = 0; i < 25; i++) file.write(line(i));
    file.close();
    expect(readdirSync(join(dir, "logs"))).toEqual(["fleetcron.log"]);
    expect(readFileSync(path, "utf8")).toBe(Array.from({ length: 5 }, (_, i) => line(20 + i)).join(""));
  });

  test("the file and every rotated file are mode 600, and a looser existing file is tightened", () => {
    const file = new RotatingFile({ path, maxBytes: 1000, keep: 2 });
    file.write(line(0));
    chmodSync(path, 0o644);
    file.close();
    const again = new RotatingFile({ path, maxBytes: 1000, keep: 2 });
    for (let i = 1; i < 25; i++) again.write(line(i));
    again.close();
    for (const f of logFiles()) expect({ f, mode: (statSync(f).mode & 0o777).toString(8) }).toEqual({ f, mode: "600" });
  });

  test("a rotation cut short by a kill (a gap in the numbers) loses nothing: the next rotation closes the gap", () => {
    const file = new RotatingFile({ path, maxBytes: 1000, keep: 5 });
    for (let i = 0; i < 30; i++) file.write(line(i)); // .2 = 0-9, .1 = 10-19, current = 20-29
    file.close();
    // Killed after `.2`→`.3` and before `.1`→`.2`: .3 and .1 exist, .2 does not.
    renameSync(`${path}.2`, `${path}.3`);
    const after = new RotatingFile({ path, maxBytes: 1000, keep: 5 });
    for (let i = 30; i < 41; i++) after.write(line(i));
    after.close();
    expect(logFiles().map((f) => readFileSync(f, "utf8")).join("")).toBe(Array.from({ length: 41 }, (_, i) => line(i)).join(""));
  });

  test("a second writer (a CLI command) that rotated first is followed, not rotated over", () => {
    const agent = new RotatingFile({ path, maxBytes: 1000, keep: 5 });
    const cli = new RotatingFile({ path, maxBytes: 1000, keep: 5 });
    for (let i = 0; i < 10; i++) agent.write(line(i));
    cli.write(line(10)); // rotates: the agent's descriptor now points at .1
    agent.write(line(11)); // must go to the new file, not start another rotation
    agent.close();
    cli.close();
    expect(readdirSync(join(dir, "logs")).sort()).toEqual(["fleetcron.log", "fleetcron.log.1"]);
    expect(readFileSync(path, "utf8")).toBe(line(10) + line(11));
  });
});

describe("createLogger with a file", () => {
  test("writes the same text and JSON lines as it writes to stderr", () => {
    for (const format of ["pretty", "json"] as const) {
      const seen: string[] = [];
      const captured: LogSink = { write: (l) => void seen.push(l), close() {} };
      const filePath = join(dir, `${format}.log`);
      const toFile = createLogger({ format, file: { path: filePath, maxBytes: 1 << 20, keep: 1 } });
      const toSink = createLogger({ format, sink: captured });
      toFile.withTag("agent").warn("store slow", { ms: 1200 });
      toSink.withTag("agent").warn("store slow", { ms: 1200 });
      const stamp = /\d{4}-\d\d-\d\dT[\d:.]+Z/g;
      expect(readFileSync(filePath, "utf8").replace(stamp, "T")).toBe(seen.join("").replace(stamp, "T"));
      expect(seen.join("")).toContain(format === "json" ? '"level":"warn","tag":"agent","msg":"store slow","data":[{"ms":1200}]' : "warn    [agent] store slow {\"ms\":1200}");
    }
  });
});

/** A child process that logs numbered JSON lines through the real logger. */
function writer(options: { maxBytes: number; keep: number; perSecond: number | null; count: number }): string[] {
  const script = join(dir, "writer.ts");
  writeFileSync(
    script,
    `import { createLogger } from ${JSON.stringify(LOGGER)};
const log = createLogger({ format: "json", file: { path: ${JSON.stringify(path)}, maxBytes: ${options.maxBytes}, keep: ${options.keep} } });
const perSecond = ${options.perSecond};
const started = performance.now();
console.log("ready");
for (let i = 0; i < ${options.count}; i++) {
  log.info("tick", { seq: i });
  if (perSecond) { const due = started + ((i + 1) * 1000) / perSecond; const wait = due - performance.now(); if (wait > 1) await Bun.sleep(wait); }
}
`,
  );
  return [process.execPath, script];
}

/** All lines of all files, oldest first; throws on a torn (unparseable) line. */
function sequence(): number[] {
  const seqs: number[] = [];
  for (const f of logFiles()) {
    const text = readFileSync(f, "utf8");
    expect(text === "" || text.endsWith("\n")).toBe(true);
    for (const l of text.split("\n").filter(Boolean)) seqs.push((JSON.parse(l) as { data: [{ seq: number }] }).data[0].seq);
  }
  return seqs;
}

describe("no line lost across rotations", () => {
  test("3,000 lines at 1,000 lines/s through ~15 rotations: every line once, in order", async () => {
    const proc = Bun.spawn(writer({ maxBytes: 16 * 1024, keep: 100, perSecond: 1000, count: 3000 }), { stdout: "ignore", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(logFiles().length).toBeGreaterThan(10);
    expect(sequence()).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    for (const f of logFiles()) expect(statSync(f).size).toBeLessThanOrEqual(16 * 1024);
  }, 30_000);

  test("SIGKILL while writing and rotating at full speed: no torn line, no gap, no duplicate", async () => {
    const proc = Bun.spawn(writer({ maxBytes: 32 * 1024, keep: 1000, perSecond: null, count: 10_000_000 }), { stdout: "pipe", stderr: "pipe" });
    const reader = proc.stdout.getReader();
    await reader.read(); // "ready"
    await Bun.sleep(700);
    proc.kill("SIGKILL");
    expect(await proc.exited).not.toBe(0);
    const seqs = sequence();
    expect(seqs.length).toBeGreaterThan(1000);
    expect(logFiles().length).toBeGreaterThan(5);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i));
  }, 30_000);
});
