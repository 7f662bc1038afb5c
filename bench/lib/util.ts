import { readFileSync } from "node:fs";

/**
 * The wall clock the agents schedule by (Date.now(), whole ms). performance.timeOrigin + now() has
 * finer resolution but drifts from the wall clock over a long run, which would bias lateness.
 */
export const nowMs = (): number => Date.now();

export const sleep = (ms: number) => Bun.sleep(Math.max(0, ms));

export interface Summary {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  min: number | null;
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : null,
    min: values.length ? Math.min(...values) : null,
  };
}

export const round = (v: number | null | undefined, digits = 1): number | null =>
  v === null || v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;

export function loadavg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "n/a";
  }
}

const CLK_TCK = (() => {
  try {
    const out = Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim();
    return Number(out) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null when gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/status in kB, read once; null when the process is gone. */
function statusKb(pid: number, fields: string[]): number[] | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const values = fields.map((name) => Number(new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status)?.[1]));
    return values.every(Number.isFinite) ? values : null;
  } catch {
    return null;
  }
}

/** Resident set size in MB, from /proc/<pid>/status VmRSS; null when gone. */
export function rssMb(pid: number): number | null {
  const kb = statusKb(pid, ["VmRSS"]);
  return kb ? kb[0]! / 1024 : null;
}

/**
 * RSS split into private memory (RssAnon: the JS heap, JIT code, allocator arenas) and file-backed
 * pages (RssFile: mostly the runtime's own executable, mapped read-only and shared by every process
 * running it). Both count in VmRSS; the split says which one a change could shrink.
 */
export function rssSplitMb(pid: number): { anon: number; file: number } | null {
  const kb = statusKb(pid, ["RssAnon", "RssFile"]);
  return kb ? { anon: kb[0]! / 1024, file: kb[1]! / 1024 } : null;
}

export function machineInfo(): Record<string, unknown> {
  let cpu = "unknown";
  let memMb = 0;
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
    memMb = Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]) / 1024);
  } catch {
    /* not Linux */
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    mem_mb: memMb,
    os: `${process.platform} ${process.arch}`,
    kernel: (() => {
      try {
        return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
      } catch {
        return "";
      }
    })(),
    bun: Bun.version,
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return check();
}

/** The next whole second at least `leadMs` from now. */
export function nextSecond(leadMs = 0): number {
  return Math.ceil((Date.now() + leadMs) / 1000) * 1000;
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}
