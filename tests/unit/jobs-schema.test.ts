import { describe, expect, test } from "bun:test";
import { parseJobDocument, type JobParseContext } from "../../src/jobs/schema.ts";
import type { Job, ValidationProblem } from "../../src/jobs/types.ts";
import { seedDailyReport, seedDataPipeline } from "../fixtures/seed-jobs.ts";

const SEED_DAILY_REPORT = seedDailyReport();
const SEED_DATA_PIPELINE = seedDataPipeline();

const ctx: JobParseContext = { secretKeys: ["BASE_URL", "API_SECRET"], id: "abc123" };
const RETRY_DEFAULTS = { retries: 0, delay_sec: 5, backoff: 2, max_delay_sec: 300, jitter: 0 };

function valid(doc: unknown, context: JobParseContext = ctx): Job {
  const result = parseJobDocument(doc, context);
  if (!result.ok) throw new Error(`unexpected problems: ${JSON.stringify(result.problems, null, 2)}`);
  return result.job;
}

function problems(doc: unknown, context: JobParseContext = ctx): ValidationProblem[] {
  const result = parseJobDocument(doc, context);
  if (result.ok) throw new Error("expected problems");
  return result.problems;
}

const simple = (extra: Record<string, unknown> = {}) => ({ name: "J", every: "30s", url: "http://127.0.0.1:8080/x", ...extra });
const messagesAt = (doc: unknown, path: string, context?: JobParseContext) =>
  problems(doc, context).filter((p) => p.path === path).map((p) => p.message);

describe("seed documents", () => {
  test("Daily Report: single request → one action named after the job", () => {
    expect(valid({ _id: "ignored", ...SEED_DAILY_REPORT })).toEqual({
      id: "abc123",
      name: "Daily Report",
      enabled: true,
      schedule: { kind: "hour-minute", hour: 9, minute: 30 },
      tz: undefined,
      actions: [
        {
          type: "http",
          name: "Daily Report",
          method: "GET",
          url: "{{BASE_URL}}/report",
          headers: { Authorization: "Bearer {{API_SECRET}}" },
          timeout_sec: 30,
          retry: { ...RETRY_DEFAULTS, retries: 3 },
          expect_status: [],
          continue_on_failure: false,
        },
      ],
      overlap: "skip",
      catchup: "last",
      on_lost: "rerun",
      on_success: [],
      on_failure: [],
      alert_after_sec: undefined,
    });
  });

  test("Data Pipeline: an action chain every hour, with when", () => {
    const job = valid(SEED_DATA_PIPELINE);
    expect(job.schedule).toEqual({ kind: "hour-minute", hour: null, minute: 0 });
    expect(job.actions.map((a) => [a.name, a.method, a.timeout_sec])).toEqual([
      ["Fetch Data", "GET", 60],
      ["Process Data", "POST", 30],
    ]);
    expect(job.actions[1]!.when).toEqual({ hour_in: [0, 12] });
    expect(job.actions[0]!.when).toBeUndefined();
  });

  test("the stored form with extra keys is accepted unless keys are strict", () => {
    const doc = { ...SEED_DAILY_REPORT, created_by: "ops", last_edit: "2024-01-01" };
    expect(valid(doc).name).toBe("Daily Report");
    expect(messagesAt(doc, "created_by", { ...ctx, strictKeys: true })).toEqual(['is not a known job key (valid keys: _id, name, description, enabled, hour, minute, cron, every, at, tz, method, headers, body, timeout_sec, retry, expect_status, url, actions, overlap, catchup, on_lost, on_success, on_failure, notify_after_failures, on_recovery, alert_after_sec, run_on)']);
  });
});

describe("FleetCron additions", () => {
  test("cron, every, tz, policies and defaults", () => {
    expect(valid(simple({ every: undefined, cron: " 0 9 * * 1-5 " })).schedule).toEqual({ kind: "cron", expression: "0 9 * * 1-5" });
    expect(valid(simple({ every: "1h30m" })).schedule).toEqual({ kind: "every", ms: 5_400_000, text: "1h30m" });
    const job = valid(simple({ tz: "America/New_York", overlap: "allow", catchup: "all", on_lost: "skip", alert_after_sec: 90, enabled: false }));
    expect(job).toMatchObject({ tz: "America/New_York", overlap: "allow", catchup: "all", on_lost: "skip", alert_after_sec: 90, enabled: false });
    expect(valid({ name: "J", minute: 5, url: "http://x" }).schedule).toEqual({ kind: "hour-minute", hour: null, minute: 5 });
  });

  test("request defaults, expect_status, retry policy", () => {
    const [action] = valid(simple({ method: "post", expect_status: 204, retry: { retries: 2, delay_sec: 600, backoff: 2, jitter: 0.1 } })).actions;
    expect(action).toMatchObject({ method: "POST", timeout_sec: 30, headers: {}, expect_status: [204] });
    // No silent cap below a first delay the user chose.
    expect(action!.retry).toEqual({ retries: 2, delay_sec: 600, backoff: 2, max_delay_sec: 600, jitter: 0.1 });
    expect(valid(simple({ expect_status: [200, 201] })).actions[0]!.expect_status).toEqual([200, 201]);
    expect(valid(simple({ body: { a: "{{run_id}}" } })).actions[0]!.body).toEqual({ a: "{{run_id}}" });
    expect("body" in valid(simple({ body: null })).actions[0]!).toBe(false);
  });

  test("actions: default names, job-level defaults inherited; notifications inherit nothing", () => {
    const job = valid({
      name: "J",
      every: "5m",
      headers: { Authorization: "Bearer {{API_SECRET}}", Accept: "application/json" },
      timeout_sec: 10,
      retry: { retries: 1 },
      actions: [{ url: "http://a/1" }, { url: "http://a/2", headers: { authorization: "Basic x" }, timeout_sec: 3 }],
      on_failure: [{ url: "http://hooks/alert", body: "{{job.name}} failed at {{steps.step2.status}}" }],
    });
    expect(job.actions.map((a) => a.name)).toEqual(["step1", "step2"]);
    expect(job.actions[0]).toMatchObject({ headers: { Authorization: "Bearer {{API_SECRET}}", Accept: "application/json" }, timeout_sec: 10 });
    expect(job.actions[0]!.retry.retries).toBe(1);
    expect(job.actions[1]).toMatchObject({ headers: { Accept: "application/json", authorization: "Basic x" }, timeout_sec: 3 });
    expect(job.on_failure[0]).toMatchObject({ name: "on_failure1", headers: {}, timeout_sec: 30 });
    expect(job.on_failure[0]!.retry).toEqual(RETRY_DEFAULTS);
  });
});

describe("problems", () => {
  test("messages name the path and say what is valid, with what was found", () => {
    expect(problems({ ...SEED_DAILY_REPORT, hour: "9" })).toEqual([
      { job: "Daily Report", path: "hour", message: 'must be an integer 0-23, or null for every hour (got "9")' },
    ]);
    expect(messagesAt({ ...SEED_DATA_PIPELINE, actions: [{ ...SEED_DATA_PIPELINE.actions[0], retry: { retries: 1.5 } }] }, "actions[0].retry.retries")).toEqual([
      "must be an integer 0-100 (extra attempts after the first) (got 1.5)",
    ]);
    expect(messagesAt(simple({ url: undefined, actions: [{ name: "a" }] }), "actions[0].url")).toEqual(["is required"]);
  });

  test("every problem of a document at once", () => {
    const found = problems({
      name: "Bad",
      minute: 75,
      tz: "Mars/Olympus",
      method: "GET /x",
      url: "ftp://example.com",
      timeout_sec: 0,
      overlap: "sometimes",
      headers: { "X-Key": "{{NOPE}}" },
    });
    expect(found.map((p) => p.path).sort()).toEqual(["headers.X-Key", "method", "minute", "overlap", "timeout_sec", "tz", "url"]);
    expect(found.every((p) => p.job === "Bad")).toBe(true);
  });

  test("exactly one schedule", () => {
    expect(messagesAt({ name: "J", url: "http://x" }, "")[0]).toStartWith("has no schedule; give exactly one of cron");
    expect(messagesAt(simple({ cron: "* * * * *", minute: 0 }), "")[0]).toStartWith("has several schedules (cron, every, minute/hour)");
    expect(messagesAt({ name: "J", hour: 9, url: "http://x" }, "minute")).toEqual(["is required with hour (an integer 0-59)"]);
    expect(messagesAt(simple({ every: "10ms" }), "every")[0]).toContain('must be an interval such as "30s"');
    expect(messagesAt(simple({ every: undefined, cron: "0 25 * * *" }), "cron")[0]).toContain("hour");
  });

  test("exactly one request form", () => {
    expect(messagesAt(simple({ actions: [{ url: "http://y" }] }), "url")[0]).toStartWith("cannot be used together with actions");
    expect(messagesAt({ name: "J", every: "1m" }, "")[0]).toStartWith("has no request");
    expect(messagesAt(simple({ actions: [] }), "actions")[0]).toStartWith("must list at least one action");
  });

  test("unknown template name", () => {
    expect(problems(simple({ url: "{{BASE}}/x" }))).toEqual([
      {
        job: "J",
        path: "url",
        message: "unknown template name {{BASE}}: not a secret (config \"secrets\" or FLEETCRON_SECRET_BASE) nor a built-in (run_id, scheduled_for, job.name, machine_id, attempt)",
      },
    ]);
    expect(messagesAt(simple({ body: { deep: ["ok", { x: "{{ NOPE }}" }] } }), "body.deep[1].x")[0]).toStartWith("unknown template name {{NOPE}}");
    expect(messagesAt(simple({ body: { "{{run_id}}": 1 } }), 'body["{{run_id}}"]')[0]).toStartWith("templates are not filled in inside object keys");
  });

  test("step references: earlier steps only; notifications see the whole main chain", () => {
    const doc = {
      name: "Chain",
      every: "1m",
      actions: [
        { name: "first", url: "http://x/{{steps.second.json.id}}" },
        { name: "second", url: "http://x/{{steps.first.json.id}}" },
      ],
      on_success: [
        { name: "n1", url: "http://x/{{steps.second.status}}" },
        { name: "n2", url: "http://x/{{steps.n1.status}}", body: "{{steps.n3.body}}" },
        { name: "n3", url: "http://x" },
      ],
      on_failure: [{ name: "f1", url: "http://x/{{steps.n1.status}}" }],
    };
    const found = problems(doc);
    expect(found.map((p) => p.path)).toEqual(["actions[0].url", "on_success[1].body", "on_failure[0].url"]);
    expect(found[0]!.message).toBe('{{steps.second.json.id}} refers to step "second", which does not run before this one (earlier steps: none)');
    expect(found[2]!.message).toContain('earlier steps: "first", "second"');
  });

  test("inherited job-level templates are checked for each action that uses them", () => {
    const found = problems({ name: "J", every: "1m", headers: { "X-Prev": "{{steps.a.status}}" }, actions: [{ name: "a", url: "http://x" }, { name: "b", url: "http://x" }] });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ path: "headers.X-Prev" });
    expect(found[0]!.message).toEndWith('(as a default for step "a")');
  });

  test("duplicate step names, including the job's own request and notifications", () => {
    expect(messagesAt({ name: "J", every: "1m", actions: [{ name: "a", url: "http://x" }, { name: "a", url: "http://y" }] }, "actions[1].name")[0]).toStartWith(
      'duplicate step name "a" (also actions[0])',
    );
    expect(messagesAt(simple({ on_failure: [{ name: "J", url: "http://x" }] }), "on_failure[0].name")[0]).toStartWith(
      `duplicate step name "J" (also the job's own request)`,
    );
  });

  test("label when the name is unusable; non-objects", () => {
    expect(problems({ every: "1m", url: "http://x" }, { ...ctx, label: "#4" })).toEqual([{ job: "#4", path: "name", message: "is required" }]);
    expect(problems("job", { ...ctx, label: "#0" })).toEqual([{ job: "#0", path: "", message: 'must be a job document (a JSON object) (got "job")' }]);
    expect(messagesAt(simple({ name: " J" }), "name")[0]).toStartWith("must be a non-empty name without leading or trailing spaces");
    expect(messagesAt(simple({ retry: [] }), "retry")[0]).toStartWith("must be an object of retry settings");
  });

  test("$ keys, deep nesting and huge strings are problems, not crashes", () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100_000; i++) deep = (deep.a = {}) as Record<string, unknown>;
    expect(messagesAt(simple({ body: root }), `body${".a".repeat(20)}`)).toEqual(["is nested more than 20 levels deep; flatten it"]);
    expect(messagesAt(simple({ body: { $where: "1" } }), "body.$where")[0]).toStartWith('keys starting with "$" are not allowed');
    expect(messagesAt(simple({ body: "x".repeat(70_000) }), "body")).toEqual(["is 69 KiB; strings are limited to 64 KiB"]);
  });

  test("strict keys: typos inside actions, retry and when get a suggestion", () => {
    const doc = { name: "J", every: "1m", actions: [{ url: "http://x", timeout: 5, retry: { retry: 2 }, when: { hours_in: [1] } }] };
    const strict = { ...ctx, strictKeys: true };
    expect(messagesAt(doc, "actions[0].timeout", strict)).toEqual(['is not a known action key (did you mean "timeout_sec"?)']);
    expect(messagesAt(doc, "actions[0].retry.retry", strict)).toEqual(['is not a known retry key (did you mean "retries"?)']);
    expect(messagesAt(doc, "actions[0].when.hours_in", strict)).toEqual(['is not a known when key (did you mean "hour_in"?)']);
    expect(valid(doc).actions[0]!.timeout_sec).toBe(30);
  });
});
