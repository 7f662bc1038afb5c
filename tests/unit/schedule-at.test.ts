import { describe, expect, test } from "bun:test";
import { parseJobDocument } from "../../src/jobs/schema.ts";
import { atInstant, parseAt } from "../../src/schedule/at.ts";
import { firesBetween, nextFireAfter, previousFireBefore } from "../../src/schedule/next.ts";

const ms = (iso: string) => Date.parse(iso);
const at = (text: string) => ({ kind: "at" as const, text, ...parseAt(text)! });

describe("at: parsing", () => {
  test("an offset or Z makes an instant; none makes a wall time", () => {
    expect(parseAt("2026-12-24T18:00:00Z")).toEqual({ instant: ms("2026-12-24T18:00:00Z") });
    expect(parseAt("2026-12-24T18:00+01:00")).toEqual({ instant: ms("2026-12-24T17:00:00Z") });
    expect(parseAt("2026-12-24T18:00:30.250-0530")).toEqual({ instant: ms("2026-12-24T23:30:30.250Z") });
    expect(parseAt("2026-12-24T18:00")).toEqual({ wall: { year: 2026, month: 12, day: 24, hour: 18, minute: 0, second: 0 } });
  });

  test("malformed or impossible times are refused", () => {
    for (const bad of ["tomorrow", "2026-02-30T10:00", "2026-12-24T25:00Z", "2026-12-24", "2026-12-24T18:00+25:00", "2026-12-24T18:00:00.5"]) expect(parseAt(bad)).toBeNull();
  });
});

describe("at: the fixed-hour DST rule", () => {
  test("a wall time in a spring-forward gap fires at the first instant after the gap", () => {
    // New York, 2026-03-08: 02:00-03:00 does not exist; 03:00 EDT = 07:00Z.
    expect(atInstant(at("2026-03-08T02:30"), "America/New_York")).toBe(ms("2026-03-08T07:00:00Z"));
  });

  test("a wall time shown twice fires at its first occurrence", () => {
    // New York, 2026-11-01: 01:30 is shown at 05:30Z (EDT) and 06:30Z (EST).
    expect(atInstant(at("2026-11-01T01:30"), "America/New_York")).toBe(ms("2026-11-01T05:30:00Z"));
  });

  test("an instant ignores the zone", () => {
    expect(atInstant(at("2026-11-01T01:30:00Z"), "Asia/Tokyo")).toBe(ms("2026-11-01T01:30:00Z"));
  });
});

describe("at: fires once", () => {
  const once = at("2026-12-24T18:00:00Z");
  const t = ms("2026-12-24T18:00:00Z");
  test("next, previous and ranges see the one instant only", () => {
    expect(nextFireAfter(once, "UTC", t - 1)).toBe(t);
    expect(nextFireAfter(once, "UTC", t)).toBeNull();
    expect(previousFireBefore(once, "UTC", t + 1)).toBe(t);
    expect(previousFireBefore(once, "UTC", t)).toBeNull();
    expect(firesBetween(once, "UTC", t - 86_400_000, t + 86_400_000, 100)).toEqual([t]);
    expect(firesBetween(once, "UTC", t, t + 86_400_000, 100)).toEqual([]);
  });
});

describe("at: in a job document", () => {
  const base = { name: "once", url: "https://example.test/x" };
  test("is a schedule of its own, exclusive with every, cron and hour", () => {
    const parsed = parseJobDocument({ ...base, at: "2026-12-24T18:00" }, { secretKeys: [] });
    expect(parsed.ok && parsed.job.schedule).toEqual({ kind: "at", text: "2026-12-24T18:00", wall: { year: 2026, month: 12, day: 24, hour: 18, minute: 0, second: 0 } });
    const both = parseJobDocument({ ...base, at: "2026-12-24T18:00", every: "1m" }, { secretKeys: [] });
    expect(both.ok).toBe(false);
    expect(!both.ok && both.problems[0]!.message).toContain("several schedules (every, at), which are mutually exclusive");
    const bad = parseJobDocument({ ...base, at: "Christmas" }, { secretKeys: [] });
    expect(!bad.ok && bad.problems.map((p) => [p.path, p.message.slice(0, 22)])).toEqual([["at", "must be an ISO time su"]]);
  });

  test("{{failures}} is known in on_failure and on_recovery only", () => {
    const doc = { ...base, every: "1m", on_failure: [{ url: "https://example.test/f?n={{failures}}" }], on_recovery: [{ url: "https://example.test/r?n={{failures}}" }] };
    expect(parseJobDocument(doc, { secretKeys: [] }).ok).toBe(true);
    const main = parseJobDocument({ ...base, every: "1m", url: "https://example.test/x?n={{failures}}" }, { secretKeys: [] });
    expect(!main.ok && main.problems[0]!.message).toBe("{{failures}} is filled in only in on_failure and on_recovery steps");
  });
});
