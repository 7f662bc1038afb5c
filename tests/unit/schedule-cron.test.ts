import { describe, expect, test } from "bun:test";
import { parseCron } from "../../src/schedule/cron.ts";

const range = (from: number, to: number, step = 1) => {
  const values: number[] = [];
  for (let v = from; v <= to; v += step) values.push(v);
  return values;
};

describe("parseCron fields", () => {
  test("5 fields: seconds are 0", () => {
    const c = parseCron("30 9 * * 1-5");
    expect(c.hasSeconds).toBe(false);
    expect(c.seconds).toEqual([0]);
    expect(c.minutes).toEqual([30]);
    expect(c.hours).toEqual([9]);
    expect(c.daysOfMonth).toEqual(range(1, 31));
    expect(c.months).toEqual(range(1, 12));
    expect(c.daysOfWeek).toEqual([1, 2, 3, 4, 5]);
  });

  test("6 fields: a leading seconds field", () => {
    const c = parseCron("*/15 0 12 * * *");
    expect(c.hasSeconds).toBe(true);
    expect(c.seconds).toEqual([0, 15, 30, 45]);
    expect(c.minutes).toEqual([0]);
    expect(c.hours).toEqual([12]);
  });

  test("lists, ranges and steps", () => {
    expect(parseCron("1,5,10-12 * * * *").minutes).toEqual([1, 5, 10, 11, 12]);
    expect(parseCron("*/20 * * * *").minutes).toEqual([0, 20, 40]);
    expect(parseCron("10-30/10 * * * *").minutes).toEqual([10, 20, 30]);
    expect(parseCron("5/15 * * * *").minutes).toEqual([5, 20, 35, 50]);
    expect(parseCron("0 */6 * * *").hours).toEqual([0, 6, 12, 18]);
    expect(parseCron("0 0 */10 * *").daysOfMonth).toEqual([1, 11, 21, 31]);
    expect(parseCron("5,1,5,3 * * * *").minutes).toEqual([1, 3, 5]);
  });

  test("month and day names, case-insensitive, also in ranges", () => {
    expect(parseCron("0 0 * jan,Mar,DEC *").months).toEqual([1, 3, 12]);
    expect(parseCron("0 0 * JUN-AUG *").months).toEqual([6, 7, 8]);
    expect(parseCron("0 0 * * mon-fri").daysOfWeek).toEqual([1, 2, 3, 4, 5]);
    expect(parseCron("0 0 * * SUN,sat").daysOfWeek).toEqual([0, 6]);
    expect(parseCron("0 0 * * MON-SAT/2").daysOfWeek).toEqual([1, 3, 5]);
  });

  test("day-of-week 7 is Sunday", () => {
    expect(parseCron("0 0 * * 7").daysOfWeek).toEqual([0]);
    expect(parseCron("0 0 * * 5-7").daysOfWeek).toEqual([0, 5, 6]);
    expect(parseCron("0 0 * * 0,7").daysOfWeek).toEqual([0]);
    expect(parseCron("0 0 * * *").daysOfWeek).toEqual(range(0, 6));
  });

  test("macros", () => {
    const expectSame = (macro: string, expression: string) => {
      const { source: _a, ...fromMacro } = parseCron(macro);
      const { source: _b, ...fromText } = parseCron(expression);
      expect(fromMacro).toEqual(fromText);
    };
    expectSame("@hourly", "0 * * * *");
    expectSame("@daily", "0 0 * * *");
    expectSame("@midnight", "0 0 * * *");
    expectSame("@weekly", "0 0 * * 0");
    expectSame("@monthly", "0 0 1 * *");
    expectSame("@yearly", "0 0 1 1 *");
    expectSame("@annually", "0 0 1 1 *");
    expectSame("@DAILY", "0 0 * * *");
    expect(parseCron("@hourly").hourWildcard).toBe(true);
    expect(parseCron("@daily").hourWildcard).toBe(false);
    expect(parseCron("@weekly").source).toBe("@weekly");
  });

  test("extra whitespace is tolerated", () => {
    expect(parseCron("  0   9 *\t* *  ").hours).toEqual([9]);
  });
});

describe("parseCron flags that decide semantics", () => {
  test("hourWildcard: the hour field starts with *", () => {
    expect(parseCron("30 * * * *").hourWildcard).toBe(true);
    expect(parseCron("*/15 * * * *").hourWildcard).toBe(true);
    expect(parseCron("0 */2 * * *").hourWildcard).toBe(true);
    expect(parseCron("0 9 * * *").hourWildcard).toBe(false);
    expect(parseCron("0 0-23 * * *").hourWildcard).toBe(false);
    expect(parseCron("* 2 * * *").hourWildcard).toBe(false);
    expect(parseCron("0 0 */2 * * *").hourWildcard).toBe(true);
  });

  test("day fields count as restricted unless they start with *", () => {
    const both = parseCron("0 0 1,15 * MON");
    expect(both.dayOfMonthRestricted).toBe(true);
    expect(both.dayOfWeekRestricted).toBe(true);
    const stepped = parseCron("0 0 */2 * MON");
    expect(stepped.dayOfMonthRestricted).toBe(false);
    expect(stepped.dayOfWeekRestricted).toBe(true);
    const none = parseCron("0 0 * * *");
    expect(none.dayOfMonthRestricted).toBe(false);
    expect(none.dayOfWeekRestricted).toBe(false);
  });
});

describe("parseCron errors name the field and say what is valid", () => {
  const cases: [string, string][] = [
    ["0 25 * * *", 'hour field "25": values must be 0-23'],
    ["60 * * * *", 'minute field "60": values must be 0-59'],
    ["61 0 * * * *", 'second field "61": values must be 0-59'],
    ["0 0 0 * *", 'day-of-month field "0": values must be 1-31'],
    ["0 0 32 * *", 'day-of-month field "32": values must be 1-31'],
    ["0 0 * 13 *", 'month field "13": values must be 1-12 or JAN-DEC'],
    ["0 0 * FOO *", 'month field "FOO": "FOO" is not valid; values must be 1-12 or JAN-DEC'],
    ["0 0 * * 8", 'day-of-week field "8": values must be 0-7 (0 and 7 are Sunday) or SUN-SAT'],
    ["0 0 * * MON-FOO", 'day-of-week field "MON-FOO": "FOO" is not valid'],
    ["x * * * *", 'minute field "x": "x" is not valid; values must be 0-59'],
    ["0 MON * * *", 'hour field "MON": "MON" is not valid; values must be 0-23'],
    ["*/0 * * * *", 'minute field "*/0": step must be a whole number from 1 to 59'],
    ["0 */24 * * *", 'hour field "*/24": step must be a whole number from 1 to 23'],
    ["0 */x * * *", 'hour field "*/x": step must be'],
    ["0 5-2 * * *", 'hour field "5-2": range "5-2" runs backwards'],
    ["1,,2 * * * *", 'minute field "1,,2": empty list item'],
    ["1/2/3 * * * *", 'minute field "1/2/3": "1/2/3" has more than one "/"'],
    ["1-2-3 * * * *", 'minute field "1-2-3": "1-2-3" is not a value or a range a-b'],
    ["-1 * * * *", 'minute field "-1"'],
    ["0 9 * *", 'cron expression "0 9 * *" has 4 fields; expected 5 (minute hour day-of-month month day-of-week) or 6'],
    ["", 'cron expression "" has 0 fields'],
    ["0 0 0 0 0 0 0", "has 7 fields"],
    ["@reboot", 'cron macro "@reboot" is not supported; use @yearly'],
  ];
  for (const [expression, message] of cases) {
    test(JSON.stringify(expression), () => {
      expect(() => parseCron(expression)).toThrow(message);
    });
  }
});

describe("a cron that can never fire is an error", () => {
  test("a day-of-month no listed month has", () => {
    expect(() => parseCron("0 0 31 2 *")).toThrow(/can never fire: day-of-month 31 does not occur in FEB/);
    expect(() => parseCron("0 0 30 2 *")).toThrow(/can never fire/);
    expect(() => parseCron("0 0 31 4,6,9,11 *")).toThrow(/APR, JUN, SEP, NOV/);
  });
  test("possible ones stay valid: Feb 29, a month that has the day, or a day-of-week (either matches)", () => {
    expect(() => parseCron("0 0 29 2 *")).not.toThrow();
    expect(() => parseCron("0 0 31 2,3 *")).not.toThrow();
    expect(() => parseCron("0 0 31 2 MON")).not.toThrow();
  });
});
