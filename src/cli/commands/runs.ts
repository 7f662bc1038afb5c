import { defineCommand } from "citty";
import { retryRun } from "../../control/retry.ts";
import { EXIT_FAILED, UsageError } from "../../core/errors.ts";
import type { RunStatus } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { displayTime } from "../../schedule/display.ts";
import { output, table } from "../_output.ts";
import { executeContext, withStore } from "../_runtime.ts";

const STATUSES: RunStatus[] = ["running", "success", "error", "skipped", "lost", "missed"];

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
  meta: { name: "runs", description: "Run history, newest first; `runs retry RUN_ID` re-drives a finished run" },
  subCommands: { retry: retryCommand },
  args: {
    ...globalArgs,
    job: { type: "string", description: "Only this job (by name)" },
    status: { type: "string", description: `Only this status: ${STATUSES.join(", ")}` },
    limit: { type: "string", default: "20", description: "How many" },
  },
  async run({ args }) {
    // citty runs the parent after a subcommand: `runs retry` has printed its own output.
    if (args._[0] === "retry") return;
    const limit = Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number 1-10000 (got "${args.limit}")`);
    const status = args.status as RunStatus | undefined;
    if (status !== undefined && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(", ")} (got "${status}")`);
    await withStore(async ({ store, config }) => {
      const runs = await store.listRuns({ limit, ...(args.job ? { job_name: args.job as string } : {}), ...(status ? { status } : {}) });
      output({ runs }, () =>
        runs.length === 0
          ? "no runs match"
          : table(
              [`SCHEDULED (${config.tz})`, "JOB", "STATUS", "ATTEMPT", "TRIGGER", "MACHINE", "MS", "DETAIL"],
              runs.map((r) => [displayTime(r.scheduled_for.getTime(), config.tz), r.job_name, r.status, r.attempt, r.trigger, r.machine_id, r.duration_ms, r.error ?? r.reason ?? ""]),
            ),
      );
    });
  },
});
