import { defineCommand } from "citty";
import { notFound } from "../../control/names.ts";
import { retryRun } from "../../control/retry.ts";
import { EXIT_FAILED, UsageError } from "../../core/errors.ts";
import type { RunQuery, RunRecord, RunStatus, Store } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { detailOf, localTime, output, relative, stepLine, table } from "../_output.ts";
import { executeContext, withStore } from "../_runtime.ts";

const STATUSES: RunStatus[] = ["running", "success", "error", "skipped", "lost", "missed"];

/**
 * A job's history follows its id, so it survives `jobs rename`; the name is the fallback for the
 * history of a deleted job. A name that matches neither is a typo: an error with the nearest names.
 */
async function runsOfJob(store: Store, name: string): Promise<Pick<RunQuery, "job_id" | "job_name">> {
  const job = await store.findJobByName(name);
  if (job) return { job_id: job._id };
  if ((await store.listRuns({ job_name: name, limit: 1 })).length > 0) return { job_name: name };
  const names = (await store.listJobs()).map((d) => d.name).filter((n): n is string => typeof n === "string");
  throw notFound("job", name, names, "the store has no jobs and no run of that name");
}

const show = defineCommand({
  meta: { name: "show", description: "One run: its record and each step (tries, HTTP status, time, error)" },
  args: { ...globalArgs, run_id: { type: "positional", required: true, valueHint: "run id", description: "Run id (the RUN ID column of `fleetcron runs`; RUN_ID#N for attempt N)" } },
  async run({ args }) {
    await withStore(async ({ store, config }) => {
      const id = args.run_id as string;
      const found = (await store.getRun(id)) ?? (await store.getRun(`${id}#1`));
      if (!found) {
        const recent = (await store.listRuns({ limit: 200 })).map((r) => r._id);
        throw notFound("run", id, recent, "no run has that id; `fleetcron runs` lists recent ones");
      }
      const run = found;
      const now = Date.now();
      output({ run }, () =>
        [
          `run ${run._id}: ${run.job_name}, ${run.status}${run.duration_ms !== undefined ? ` in ${run.duration_ms} ms` : ""}`,
          `  scheduled: ${run.scheduled_for.toISOString()} (${localTime(run.scheduled_for, config.tz)}, ${relative(run.scheduled_for, now)})`,
          `  trigger:   ${run.trigger}${run.trigger === "alert" ? "" : `, attempt ${run.attempt}`}`,
          `  machine:   ${run.machine_id ?? "-"}`,
          ...(run.error || run.reason ? [`  detail:    ${detailOf(run.status, run.error ?? run.reason)}`] : []),
          "  steps:",
          ...(run.steps?.length ? run.steps.map((s) => `    ${stepLine(s)}`) : ["    (none recorded)"]),
        ].join("\n"),
      );
    });
  },
});

const retryCommand = defineCommand({
  meta: { name: "retry", description: "Re-run a finished occurrence (error, lost, missed, skipped) as its next attempt, exactly once" },
  args: { ...globalArgs, id: { type: "positional", required: true, description: "Run id (as `runs --json` shows: _id or run_id)" } },
  async run({ args }) {
    await withStore(async (rt) => {
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      const result = await retryRun(executeContext(rt, abort.signal), String(args.id), Object.keys(rt.config.secrets));
      const run = result.outcome;
      output(result, () =>
        [
          `${result.job_name} @ ${result.scheduled_for}: attempt ${result.attempt} (after ${result.previous.status} attempt ${result.previous.attempt}): ${run.status} in ${run.duration_ms} ms (run ${run._id})`,
          ...(run.steps ?? []).map((s) => `  ${s.name}: ${s.status}${s.http_status ? ` HTTP ${s.http_status}` : ""}${s.error ? ` — ${s.error}` : s.reason ? ` — ${s.reason}` : ""}`),
        ].join("\n"),
      );
      if (run.status !== "success") process.exitCode = EXIT_FAILED;
    });
  },
});

export default defineCommand({
  meta: { name: "runs", description: "Run history, newest first; `runs show RUN_ID` for one run, `runs retry RUN_ID` re-drives a finished one" },
  args: {
    ...globalArgs,
    job: { type: "string", valueHint: "name", description: "Only this job (by name)" },
    status: { type: "enum", options: STATUSES, description: "Only this status" },
    limit: { type: "string", valueHint: "n", default: "20", description: "How many" },
  },
  subCommands: { show, retry: retryCommand },
  async run({ args }) {
    // citty runs the parent after a subcommand: `runs retry` has printed its own output.
    if (args._[0] === "retry" || args._[0] === "show") return;
    const limit = Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number 1-10000 (got "${args.limit}")`);
    const status = args.status as RunStatus | undefined;
    await withStore(async ({ store, config }) => {
      const job = args.job ? await runsOfJob(store, args.job as string) : {};
      const runs: RunRecord[] = await store.listRuns({ limit, ...job, ...(status ? { status } : {}) });
      const now = Date.now();
      output({ runs }, () =>
        runs.length === 0
          ? "no runs match"
          : table(
              ["RUN ID", `SCHEDULED (${config.tz})`, "JOB", "STATUS", "ATTEMPT", "TRIGGER", "MACHINE", "MS", "DETAIL"],
              runs.map((r) => [r._id, `${localTime(r.scheduled_for, config.tz)} (${relative(r.scheduled_for, now)})`, r.job_name, r.status, r.trigger === "alert" ? null : r.attempt, r.trigger, r.machine_id, r.duration_ms, detailOf(r.status, r.error ?? r.reason)]),
              { whole: [0] },
            ),
      );
    });
  },
});
