import { describe, expect, test } from "bun:test";
import { planCatchup, type CatchupOptions } from "../../src/coordinator/catchup.ts";
import type { CatchupPolicy } from "../../src/jobs/types.ts";

/**
 * The catch-up planner (docs/protocol.md, "Catch-up"): every occurrence of a gap without a record
 * either runs or is recorded `missed` with a reason that says why.
 */

const MIN = 60_000;
const NOW = Date.UTC(2030, 0, 1, 12, 0);
const ago = (minutes: number) => NOW - minutes * MIN;
const iso = (ms: number) => new Date(ms).toISOString();
const opts = (over: Partial<CatchupOptions> = {}): CatchupOptions => ({ windowMs: 30 * MIN, cap: 100, cause: "no agent was running", ...over });
const plan = (catchup: CatchupPolicy, instants: number[], claimed: number[] = [], o: Partial<CatchupOptions> = {}) =>
  planCatchup({ catchup }, instants, new Set(claimed), NOW, opts(o));

describe("planCatchup", () => {
  test('skip: nothing runs, every occurrence is missed with catchup "skip"', () => {
    const p = plan("skip", [ago(5), ago(1), ago(90)]);
    expect(p.run).toEqual([]);
    expect(p.missed).toEqual([
      { instant: ago(90), reason: `missed: no agent was running at ${iso(ago(90))}; catchup "skip"` },
      { instant: ago(5), reason: `missed: no agent was running at ${iso(ago(5))}; catchup "skip"` },
      { instant: ago(1), reason: `missed: no agent was running at ${iso(ago(1))}; catchup "skip"` },
    ]);
  });

  test("last: only the latest within the window runs; the others say why", () => {
    const p = plan("last", [ago(1), ago(10), ago(45), ago(20)]);
    expect(p.run).toEqual([ago(1)]);
    expect(p.missed).toEqual([
      { instant: ago(45), reason: `missed: no agent was running at ${iso(ago(45))}; older than catchup_window_sec (1800 s)` },
      { instant: ago(20), reason: `missed: no agent was running; catchup "last" ran only the latest missed occurrence (${iso(ago(1))})` },
      { instant: ago(10), reason: `missed: no agent was running; catchup "last" ran only the latest missed occurrence (${iso(ago(1))})` },
    ]);
  });

  test("last with nothing inside the window runs nothing", () => {
    const p = plan("last", [ago(31), ago(60)]);
    expect(p.run).toEqual([]);
    expect(p.missed.map((m) => m.instant)).toEqual([ago(60), ago(31)]);
    expect(p.missed.every((m) => m.reason.includes("older than catchup_window_sec (1800 s)"))).toBe(true);
  });

  test("all: everything within the window runs, oldest first", () => {
    const p = plan("all", [ago(1), ago(29), ago(15), ago(31)]);
    expect(p.run).toEqual([ago(29), ago(15), ago(1)]);
    expect(p.missed).toEqual([{ instant: ago(31), reason: `missed: no agent was running at ${iso(ago(31))}; older than catchup_window_sec (1800 s)` }]);
  });

  test("all: at most the cap run, the latest ones; the rest are beyond the cap", () => {
    const instants = Array.from({ length: 10 }, (_, i) => ago(i + 1));
    const p = plan("all", instants, [], { cap: 3 });
    expect(p.run).toEqual([ago(3), ago(2), ago(1)]);
    expect(p.missed.map((m) => m.instant)).toEqual([ago(10), ago(9), ago(8), ago(7), ago(6), ago(5), ago(4)]);
    expect(p.missed[0]!.reason).toBe(`missed: no agent was running at ${iso(ago(10))}; beyond the catch-up cap of 3 occurrences`);
    expect(p.missed.every((m) => m.reason.endsWith("beyond the catch-up cap of 3 occurrences"))).toBe(true);
  });

  test("the window's start is inclusive", () => {
    expect(plan("all", [ago(30)]).run).toEqual([ago(30)]);
    expect(plan("all", [ago(30) - 1]).run).toEqual([]);
    expect(plan("last", [ago(30)]).run).toEqual([ago(30)]);
    expect(plan("last", [ago(30) - 1]).missed[0]!.reason).toContain("older than catchup_window_sec");
  });

  test("claimed instants neither run nor are recorded missed", () => {
    const p = plan("last", [ago(1), ago(2), ago(3)], [ago(1)]);
    expect(p.run).toEqual([ago(2)]);
    expect(p.missed.map((m) => m.instant)).toEqual([ago(3)]);
    expect(plan("skip", [ago(1), ago(2)], [ago(1), ago(2)])).toEqual({ run: [], missed: [] });
    expect(plan("all", [ago(1)], [ago(1)])).toEqual({ run: [], missed: [] });
  });

  test("duplicate instants are planned once", () => {
    const p = plan("all", [ago(2), ago(1), ago(2), ago(1)]);
    expect(p.run).toEqual([ago(2), ago(1)]);
    expect(p.missed).toEqual([]);
  });

  test("the cause and the window are named in words", () => {
    const p = plan("all", [ago(2) - 90 * MIN], [], { cause: "this agent was cut off from the store", windowMs: 90 * MIN });
    expect(p.missed[0]!.reason).toBe(`missed: this agent was cut off from the store at ${iso(ago(2) - 90 * MIN)}; older than catchup_window_sec (5400 s)`);
  });

  test("every open instant is either run or missed, exactly once, for every policy", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 200; round++) {
      const instants = Array.from({ length: Math.floor(rand() * 30) }, () => ago(Math.floor(rand() * 60)));
      const claimed = instants.filter(() => rand() < 0.2);
      const cap = 1 + Math.floor(rand() * 10);
      for (const policy of ["skip", "last", "all"] as const) {
        const p = plan(policy, instants, claimed, { cap });
        const open = [...new Set(instants)].filter((at) => !claimed.includes(at));
        const planned = [...p.run, ...p.missed.map((m) => m.instant)];
        expect(planned.sort((a, b) => a - b)).toEqual(open.sort((a, b) => a - b));
        expect(p.run.length).toBeLessThanOrEqual(policy === "skip" ? 0 : policy === "last" ? 1 : cap);
        expect(p.run.every((at) => at >= ago(30))).toBe(true);
        expect(p.missed.every((m) => m.reason.startsWith("missed: no agent was running"))).toBe(true);
      }
    }
  });
});
