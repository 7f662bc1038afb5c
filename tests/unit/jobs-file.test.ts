import { JOB_KEYS } from "../../src/jobs/schema.ts";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT_FAILED, EXIT_USAGE, FleetCronError } from "../../src/core/errors.ts";
import { readJobsFile } from "../../src/jobs/file.ts";
import { formatProblems, parseStoredJobs, validateJobDocs } from "../../src/jobs/validate.ts";
import { seedDailyReport, seedDataPipeline } from "../fixtures/seed-jobs.ts";

const SEED_DAILY_REPORT = seedDailyReport();
const SEED_DATA_PIPELINE = seedDataPipeline();

const secretKeys = ["BASE_URL", "API_SECRET"];
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "fleetcron-jobs-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function thrown(fn: () => unknown): FleetCronError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FleetCronError);
    return error as FleetCronError;
  }
  throw new Error("expected an error");
}

describe("readJobsFile", () => {
  test("an array, or { jobs: [...] }", () => {
    expect(readJobsFile(write("a.json", JSON.stringify([SEED_DAILY_REPORT]))).docs).toEqual([SEED_DAILY_REPORT]);
    expect(readJobsFile(write("b.json", JSON.stringify({ jobs: [SEED_DATA_PIPELINE] }))).docs).toEqual([SEED_DATA_PIPELINE]);
  });

  test("a missing file is bad usage (exit 2)", () => {
    const error = thrown(() => readJobsFile(join(dir, "nope.json")));
    expect(error.exitCode).toBe(EXIT_USAGE);
    expect(error.message).toBe(`cannot read jobs file ${join(dir, "nope.json")}: it does not exist`);
  });

  test("a JSON syntax error names the file, line and column (exit 1)", () => {
    const path = write("bad.json", '[\n  {\n    "name": "x",\n    "minute": 5 // every hour\n  }\n]');
    const error = thrown(() => readJobsFile(path));
    expect(error.exitCode).toBe(EXIT_FAILED);
    expect(error.message).toBe(`${path}:4:17: invalid JSON: expected "," or "}" after a property value, found a comment (JSON has no comments)`);
  });

  test("the wrong shape says what the file must be (exit 1)", () => {
    const path = write("obj.json", JSON.stringify(SEED_DAILY_REPORT));
    const error = thrown(() => readJobsFile(path));
    expect(error.exitCode).toBe(EXIT_FAILED);
    expect(error.message).toBe(`${path}: must be a JSON array of jobs, or an object { "jobs": [...] } (got an object)`);
    expect(thrown(() => readJobsFile(write("j.json", '{"jobs": {}}'))).message).toContain('"jobs" must be an array of job documents (got an object)');
    expect(thrown(() => readJobsFile(write("k.json", '{"jobs": [], "version": 2}'))).message).toContain('unknown top-level key "version"');
  });
});

describe("validateJobDocs", () => {
  test("the seed jobs validate; doc is the document as written minus _id", () => {
    const { jobs, problems } = validateJobDocs([{ _id: "x", ...SEED_DAILY_REPORT }, SEED_DATA_PIPELINE], { secretKeys });
    expect(problems).toEqual([]);
    expect(jobs.map((j) => j.name)).toEqual(["Daily Report", "Data Pipeline"]);
    expect(jobs[0]!.doc).toEqual(SEED_DAILY_REPORT);
    expect(jobs[1]!.job.actions).toHaveLength(2);
  });

  test("the example jobs file validates with the example config's secrets", () => {
    const { docs } = readJobsFile(join(import.meta.dir, "../../config/jobs.example.json"));
    const config = JSON.parse(readFileSync(join(import.meta.dir, "../../config/fleetcron.config.example.json"), "utf8"));
    const { jobs, problems } = validateJobDocs(docs, { secretKeys: Object.keys(config.secrets) });
    expect(formatProblems(problems)).toBe("");
    expect(jobs.map((j) => j.job.schedule.kind)).toEqual(["every", "hour-minute", "hour-minute", "cron"]);
  });

  test("every problem of every job at once, by job name (or #position, from 1) and path", () => {
    const docs = [
      SEED_DAILY_REPORT,
      { ...SEED_DAILY_REPORT, name: "Broken", hour: 24, url: "{{BASE}}/x" },
      { every: "5m", url: "http://x" },
      { ...SEED_DATA_PIPELINE, actions: [{ ...SEED_DATA_PIPELINE.actions[0], retry: { retries: "3" } }, { name: "Again", url: "{{steps.Later.body}}" }], colour: "red" },
      SEED_DAILY_REPORT,
    ];
    const { jobs, problems } = validateJobDocs(docs, { secretKeys });
    expect(jobs.map((j) => j.name)).toEqual(["Daily Report"]);
    expect(formatProblems(problems, "jobs.json").split("\n")).toEqual([
      'jobs.json: job "Broken" › hour: must be an integer 0-23, or null for every hour (got 24)',
      'jobs.json: job "Broken" › url: unknown template name {{BASE}}: not a secret (config "secrets" or FLEETCRON_SECRET_BASE), a var (config \"vars\") nor a built-in (run_id, scheduled_for, job.name, machine_id, attempt)',
      "jobs.json: job #3 › name: is required",
      `jobs.json: job "Data Pipeline" › colour: is not a known job key (valid keys: ${JOB_KEYS.join(", ")})`,
      'jobs.json: job "Data Pipeline" › actions[0].retry.retries: must be an integer 0-100 (extra attempts after the first) (got "3")',
      'jobs.json: job "Data Pipeline" › actions[1].url: {{steps.Later.body}} refers to step "Later", which does not run before this one (earlier steps: "Fetch Data")',
      'jobs.json: job "Daily Report" › name: is also the name of job #1; job names must be unique (jobs apply matches jobs by name)',
    ]);
  });

  test("stored documents: extra keys tolerated, invalid ones set aside with their problems", () => {
    const { jobs, invalid } = parseStoredJobs(
      [
        { _id: "65f0c0ffee", ...SEED_DAILY_REPORT, note: "hand-written" },
        { _id: "65f0c0ffef", name: "Half", minute: 99, url: "http://x" },
      ],
      secretKeys,
    );
    expect(jobs.map((j) => [j.id, j.name])).toEqual([["65f0c0ffee", "Daily Report"]]);
    expect(invalid).toEqual([{ id: "65f0c0ffef", name: "Half", problems: [{ job: "Half", path: "minute", message: "must be an integer 0-59 (got 99)" }] }]);
  });
});
