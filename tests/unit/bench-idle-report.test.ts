import { describe, expect, test } from "bun:test";
import { rssMb, rssSplitMb } from "../../bench/lib/util.ts";
import { report } from "../../bench/report.ts";
import type { IdleResult } from "../../bench/scenarios/idle.ts";

const row = (over: Partial<IdleResult>): IdleResult => ({ store: "ferretdb", jobs: 1000, window_s: 60, cpu_pct: 0.5, rss_start_mb: 85, rss_mb: 86, rss_max_mb: 87.5, store_ops_per_min: 43, store_ops_how: "counters", ...over });
const doc = (idle: IdleResult[]) => ({ started: "2026-12-02T00:00:00Z", duration_s: 60, mode: "quick", command: "bun run bench", agent: "source", machine: {}, loadavg: {}, results: { idle } });
const idleLine = (text: string, store: string) => text.split("\n").find((l) => l.startsWith(`| FleetCron | defaults | ${store} |`)) ?? "";

describe("bench idle rows: where the RSS is", () => {
  test("the split of the last RSS figure into private and file-backed memory is printed beside it, and a row without it shows a dash", () => {
    const text = report(doc([row({ rss_anon_mb: 37.6, rss_file_mb: 47.6 }), row({ store: "sqlite" })]) as never);
    expect(idleLine(text, "FerretDB-sqlite")).toContain("| 85 MB / 86 MB / 87.5 MB | 37.6 MB + 47.6 MB |");
    expect(idleLine(text, "SQLite")).toContain("| 85 MB / 86 MB / 87.5 MB | — |");
    // The target is still judged on the whole RSS, not on the private part.
    expect(text).toMatch(/idle < 1 % CPU and < 80 MB RSS \(FerretDB-sqlite\) \| 0.5 %, 87.5 MB \| \*\*not met\*\*/);
  });

  test("this process's own split adds up to its VmRSS", () => {
    const split = rssSplitMb(process.pid);
    expect(split).not.toBeNull();
    const vmRss = rssMb(process.pid)!;
    // RssShmem is the third part of VmRSS; a Bun test process has next to none.
    expect(Math.abs(split!.anon + split!.file - vmRss)).toBeLessThan(2);
    expect(split!.file).toBeGreaterThan(1);
    expect(rssSplitMb(2 ** 30)).toBeNull();
  });
});
