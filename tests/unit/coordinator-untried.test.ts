import { describe, expect, test } from "bun:test";
import { occurrenceId } from "../../src/coordinator/occurrence.ts";
import { unclaimed, UNTRIED_CAP, UntriedOccurrences } from "../../src/coordinator/untried.ts";
import type { Job } from "../../src/jobs/types.ts";
import { runRecord } from "../support/fake-store.ts";

const job = { id: "job-1", name: "job one" } as Job;
const at = (s: number) => Date.UTC(2030, 0, 1, 0, 0, s);

describe("untried occurrences (docs/protocol.md, \"Cost of standbys\")", () => {
  test("only those whose tryers all had their turn are taken; a failed check puts them back first", () => {
    const noted = new UntriedOccurrences();
    for (let s = 0; s < 5; s++) noted.note({ job, instant: at(s), settledAt: at(s) + 8000 });
    const first = noted.takeSettled(at(2) + 8000);
    expect(first.map((e) => e.instant)).toEqual([at(0), at(1), at(2)]);
    expect(noted.size).toBe(2);
    noted.restore(first);
    expect(noted.takeSettled(at(20)).map((e) => e.instant)).toEqual([at(0), at(1), at(2), at(3), at(4)]);
    expect(noted.size).toBe(0);
  });

  test("beyond the cap the oldest are dropped and counted", () => {
    const noted = new UntriedOccurrences();
    for (let i = 0; i < UNTRIED_CAP + 3; i++) noted.note({ job, instant: i, settledAt: i });
    expect(noted.size).toBe(UNTRIED_CAP);
    expect(noted.takeDropped()).toBe(3);
    expect(noted.takeDropped()).toBe(0);
    expect(noted.takeSettled(Number.MAX_SAFE_INTEGER)[0]!.instant).toBe(3);
  });

  test("unclaimed: those with no record under the occurrence key (any status counts as claimed)", () => {
    const entries = [0, 1, 2].map((s) => ({ job, instant: at(s), settledAt: 0 }));
    const records = [runRecord({ _id: occurrenceId(job.id, at(0)), scheduled_for: new Date(at(0)) }), runRecord({ _id: occurrenceId(job.id, at(2)), scheduled_for: new Date(at(2)), status: "missed" })];
    expect(unclaimed(entries, records).map((e) => e.instant)).toEqual([at(1)]);
  });
});
