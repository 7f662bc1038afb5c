/**
 * Cron expressions with Vixie cron semantics: 5 fields, or 6 with a leading seconds field.
 * Parsing only; when an expression fires is decided in `next.ts`.
 */

/** A parsed cron expression; every value list is sorted ascending and free of duplicates. */
export interface CronExpression {
  /** The text as written (a macro stays a macro). */
  readonly source: string;
  /** Whether the text had a leading seconds field. */
  readonly hasSeconds: boolean;
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfMonth: readonly number[];
  readonly months: readonly number[];
  /** 0 = Sunday … 6 = Saturday (a written 7 is stored as 0). */
  readonly daysOfWeek: readonly number[];
  /**
   * Day-of-month and day-of-week count as restricted when their text does not start with `*`
   * (Vixie's test, so `*\/2` is unrestricted). When both are restricted, a day matches if either
   * does.
   */
  readonly dayOfMonthRestricted: boolean;
  readonly dayOfWeekRestricted: boolean;
  /**
   * The hour field starts with `*` (`*`, `*\/2`): the job follows the wall clock across DST
   * changes (repeated times fire twice, skipped times never). Otherwise it is a fixed-hour job
   * that fires once per local day (README, "Time zones and DST").
   */
  readonly hourWildcard: boolean;
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** Upper end of `*` (day-of-week accepts 7 as Sunday but `*` must not list Sunday twice). */
  starMax: number;
  names?: readonly string[];
  /** Appended to range errors, e.g. "or JAN-DEC". */
  hint: string;
}

const MONTH_NAMES = [
  "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/** Days in each month at most (February in a leap year). */
const MONTH_LENGTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SECOND: FieldSpec = { name: "second", min: 0, max: 59, starMax: 59, hint: "0-59" };
const MINUTE: FieldSpec = { name: "minute", min: 0, max: 59, starMax: 59, hint: "0-59" };
const HOUR: FieldSpec = { name: "hour", min: 0, max: 23, starMax: 23, hint: "0-23" };
const DAY_OF_MONTH: FieldSpec = {
  name: "day-of-month",
  min: 1,
  max: 31,
  starMax: 31,
  hint: "1-31",
};
const MONTH: FieldSpec = {
  name: "month",
  min: 1,
  max: 12,
  starMax: 12,
  names: MONTH_NAMES,
  hint: "1-12 or JAN-DEC",
};
const DAY_OF_WEEK: FieldSpec = {
  name: "day-of-week",
  min: 0,
  max: 7,
  starMax: 6,
  names: DAY_NAMES,
  hint: "0-7 (0 and 7 are Sunday) or SUN-SAT",
};

const FIELD_LIST = "minute hour day-of-month month day-of-week";

/** Macros as Vixie cron defines them (@reboot has no meaning for a fleet, so it is refused). */
export const CRON_MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** Parses a cron expression; throws an `Error` naming the field and what would be valid. */
export function parseCron(expression: string): CronExpression {
  const source = expression.trim();
  let text = source;
  if (text.startsWith("@")) {
    const expanded = CRON_MACROS[text.toLowerCase()];
    if (expanded === undefined) {
      throw new Error(
        `cron macro "${text}" is not supported; use ${Object.keys(CRON_MACROS).join(", ")}`,
      );
    }
    text = expanded;
  }

  const fields = text.split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5 && fields.length !== 6) {
    throw new Error(
      `cron expression "${source}" has ${fields.length} field${fields.length === 1 ? "" : "s"}; ` +
        `expected 5 (${FIELD_LIST}) or 6 (second ${FIELD_LIST})`,
    );
  }
  const hasSeconds = fields.length === 6;
  const [secondText, minuteText, hourText, domText, monthText, dowText] = hasSeconds
    ? (fields as [string, string, string, string, string, string])
    : (["0", ...fields] as [string, string, string, string, string, string]);

  const daysOfWeek = parseField(dowText, DAY_OF_WEEK).map((d) => (d === 7 ? 0 : d));
  const daysOfMonth = parseField(domText, DAY_OF_MONTH);
  const months = parseField(monthText, MONTH);
  // With day-of-week `*` a day must match day-of-month, so `0 0 31 2 *` would wait forever.
  if (dowText.startsWith("*") && !months.some((m) => daysOfMonth[0]! <= MONTH_LENGTH[m - 1]!)) {
    const monthList = months.map((m) => MONTH_NAMES[m - 1]).join(", ");
    throw new Error(
      `cron expression "${source}" can never fire: day-of-month ${domText} does not occur in ${monthList} ` +
        `(the longest has ${Math.max(...months.map((m) => MONTH_LENGTH[m - 1]!))} days)`,
    );
  }
  return {
    source,
    hasSeconds,
    seconds: parseField(secondText, SECOND),
    minutes: parseField(minuteText, MINUTE),
    hours: parseField(hourText, HOUR),
    daysOfMonth,
    months,
    daysOfWeek: [...new Set(daysOfWeek)].sort((a, b) => a - b),
    dayOfMonthRestricted: !domText.startsWith("*"),
    dayOfWeekRestricted: !dowText.startsWith("*"),
    hourWildcard: hourText.startsWith("*"),
  };
}

function parseField(text: string, spec: FieldSpec): number[] {
  const fail = (problem: string): never => {
    throw new Error(`${spec.name} field "${text}": ${problem}`);
  };
  const values = new Set<number>();
  for (const item of text.split(",")) {
    if (item === "") fail(`empty list item; values must be ${spec.hint}`);
    const parts = item.split("/");
    if (parts.length > 2) fail(`"${item}" has more than one "/"`);
    const [rangeText = "", stepText] = parts;

    let step = 1;
    if (stepText !== undefined) {
      const span = spec.starMax - spec.min;
      step = /^\d+$/.test(stepText) ? Number(stepText) : NaN;
      if (!(step >= 1 && step <= span)) fail(`step must be a whole number from 1 to ${span}`);
    }

    let low: number;
    let high: number;
    if (rangeText === "*") {
      low = spec.min;
      high = spec.starMax;
    } else {
      const bounds = rangeText.split("-");
      if (bounds.length > 2) fail(`"${rangeText}" is not a value or a range a-b`);
      low = parseValue(bounds[0] ?? "", spec, fail);
      // `a/n` means "from a to the end, every n" (as croner and cronie read it)
      high =
        bounds[1] !== undefined
          ? parseValue(bounds[1], spec, fail)
          : stepText !== undefined
            ? spec.starMax
            : low;
      if (low > high) {
        fail(`range "${rangeText}" runs backwards; write it low-high with values ${spec.hint}`);
      }
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
}

function parseValue(token: string, spec: FieldSpec, fail: (problem: string) => never): number {
  if (/^\d+$/.test(token)) {
    const value = Number(token);
    if (value < spec.min || value > spec.max) fail(`values must be ${spec.hint}`);
    return value;
  }
  const index = spec.names?.indexOf(token.toUpperCase()) ?? -1;
  if (index >= 0) return spec.min === 1 ? index + 1 : index;
  return fail(`"${token}" is not valid; values must be ${spec.hint}`);
}
