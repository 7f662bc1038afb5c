import { defineCommand } from "citty";
import { UsageError } from "../../core/errors.ts";
import type { RunStatus } from "../../store/types.ts";
import { globalArgs } from "../_globals.ts";
import { output, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";

const STATUSES: RunStatus[] = ["running", "success", "error", "skipped", "lost", "missed"];

export default defineCommand({
  meta: { name: "runs", description: "Run history, newest first" },
  args: {
    ...globalArgs,
    job: { type: "string", valueHint: "name", description: "Only this job (by name)" },
    status: { type: "string", description: `Only this status: ${STATUSES.join(", ")}` },
    limit: { type: "string", valueHint: "n", default: "20", description: "How many" },
  },
  async run({ args }) {
    const limit = Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number 1-10000 (got "${args.limit}")`);
    const status = args.status as RunStatus | undefined;
    if (status !== undefined && !STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(", ")} (got "${status}")`);
    await withStore(async ({ store }) => {
      const runs = await store.listRuns({ limit, ...(args.job ? { job_name: args.job as string } : {}), ...(status ? { status } : {}) });
      output({ runs }, () =>
        runs.length === 0
          ? "no runs match"
          : table(
              ["SCHEDULED (UTC)", "JOB", "STATUS", "ATTEMPT", "TRIGGER", "MACHINE", "MS", "DETAIL"],
              runs.map((r) => [r.scheduled_for.toISOString(), r.job_name, r.status, r.attempt, r.trigger, r.machine_id, r.duration_ms, r.error ?? r.reason ?? ""]),
            ),
      );
    });
  },
});
