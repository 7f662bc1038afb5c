import { describe, expect, test } from "bun:test";
import { whenMatches, whenMismatch, type WallParts } from "../../src/executor/when.ts";

// Sunday 2025-03-09 09:30:15
const wall: WallParts = { year: 2025, month: 3, day: 9, hour: 9, minute: 30, second: 15, weekday: 0 };

describe("whenMatches", () => {
  test("no conditions match", () => {
    expect(whenMatches(undefined, wall)).toBe(true);
    expect(whenMatches({}, wall)).toBe(true);
  });

  test("every listed key must match", () => {
    expect(whenMatches({ hour_in: [9, 21], minute_in: [30], day_in: [9], month_in: [3] }, wall)).toBe(true);
    expect(whenMatches({ hour_in: [0, 12] }, wall)).toBe(false);
    expect(whenMatches({ hour_in: [9], minute_in: [0] }, wall)).toBe(false);
    expect(whenMatches({ month_in: [4] }, wall)).toBe(false);
    expect(whenMatches({ day_in: [10] }, wall)).toBe(false);
  });

  test("weekday_in: 0 and 7 are Sunday", () => {
    expect(whenMatches({ weekday_in: [0] }, wall)).toBe(true);
    expect(whenMatches({ weekday_in: [7] }, wall)).toBe(true);
    expect(whenMatches({ weekday_in: [1, 2, 3, 4, 5] }, wall)).toBe(false);
    expect(whenMatches({ weekday_in: [7] }, { ...wall, weekday: 6 })).toBe(false);
  });

  test("an empty list matches nothing", () => {
    expect(whenMatches({ hour_in: [] }, wall)).toBe(false);
  });

  test("the mismatch reason names the key, the list and the value", () => {
    expect(whenMismatch({ hour_in: [0, 12] }, wall)).toBe("when.hour_in [0, 12] does not include 9");
  });
});
