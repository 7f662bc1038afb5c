import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { parseStored, requireJob } from "../../../control/jobs.ts";
import { triggerJob } from "../../../control/trigger.ts";
import { FleetCronError, EXIT_FAILED } from "../../../core/errors.ts";
import { globalArgs } from "../../_globals.ts";
import { output } from "../../_output.ts";
import { executeContext, withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "trigger", description: "Run one manual occurrence now (exactly once across the fleet) and print its result" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async (rt) => {
      const parsed = parseStored(await requireJob(rt.store, args.name as string), templateKeys(rt.config));
      if (!parsed.job) {
        throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid and cannot run:\n${parsed.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`, EXIT_FAILED);
      }
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      const run = await triggerJob(executeContext(rt, abort.signal), parsed.job);
      output(run, () =>
        [
          `${run.job_name}: ${run.status} in ${run.duration_ms} ms (run ${run._id})`,
          ...(run.steps ?? []).map((s) => `  ${s.name}: ${s.status}${s.http_status ? ` HTTP ${s.http_status}` : ""}${s.attempts > 1 ? ` after ${s.attempts} attempts` : ""}${s.error ? ` — ${s.error}` : s.reason ? ` — ${s.reason}` : ""}`),
        ].join("\n"),
      );
      if (run.status !== "success") process.exitCode = EXIT_FAILED;
    });
  },
});
