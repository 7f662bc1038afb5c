import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { parseStored, requireJob } from "../../../control/jobs.ts";
import { triggerJob, type TriggerProgress } from "../../../control/trigger.ts";
import { FleetCronError, EXIT_FAILED } from "../../../core/errors.ts";
import type { Logger } from "../../../core/logger.ts";
import { globalArgs } from "../../_globals.ts";
import { output, stepLine, writeErr } from "../../_output.ts";
import { executeContext, withStore } from "../../_runtime.ts";

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

function progressLine(event: TriggerProgress): string {
  switch (event.kind) {
    case "request":
      return `  → ${event.method} ${event.url}${event.try > 1 ? ` (try ${event.try})` : ""}`;
    case "response":
      return `  ← HTTP ${event.status} in ${event.ms} ms`;
    case "failed":
      return `  ← no answer after ${event.ms} ms: ${event.error}`;
    case "wait":
      return `  … waiting ${(event.ms / 1000).toFixed(1)} s before the next try`;
  }
}

/** The executor logs each outcome; here the result is printed once, on stdout, so that line is left out. */
function withoutOutcomeLine(log: Logger, jobName: string): Logger {
  const prefix = `${jobName} @ `;
  return new Proxy(log, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if ((prop === "info" || prop === "warn") && typeof value === "function") {
        return (...args: unknown[]) => {
          const first = args[0] as string | { message?: unknown } | undefined;
          const message = typeof first === "string" ? first : typeof first?.message === "string" ? first.message : "";
          return message.startsWith(prefix) ? undefined : value.apply(target, args);
        };
      }
      return value;
    },
  });
}

export default defineCommand({
  meta: { name: "trigger", description: "Run one manual occurrence now, here (exactly once across the fleet); print each request as it happens, then the result" },
  args: { ...globalArgs, name: { type: "positional", required: true, description: "Job name" } },
  async run({ args }) {
    await withStore(async (rt) => {
      const parsed = parseStored(await requireJob(rt.store, args.name as string), templateKeys(rt.config));
      if (!parsed.job) {
        throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid and cannot run:\n${parsed.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`, EXIT_FAILED);
      }
      const job = parsed.job;
      const abort = new AbortController();
      let interrupted: string | null = null;
      const onSigint = () => {
        if (interrupted) {
          writeErr("interrupted again: exiting without waiting for the record\n");
          process.exit(EXIT_INTERRUPTED);
        }
        interrupted = `interrupted by the operator (Ctrl-C) during \`fleetcron jobs trigger\` after ${Date.now() - started} ms`;
        writeErr("interrupted: stopping the request and recording the run (Ctrl-C again to exit at once)\n");
        abort.abort();
      };
      process.on("SIGINT", onSigint);
      const started = Date.now();
      const ctx = { ...executeContext(rt, abort.signal), log: withoutOutcomeLine(rt.log, job.name) };
      writeErr(`${job.name}: running here, in this process (machine ${ctx.machineId}); no agent is asked\n`);
      let run;
      try {
        run = await triggerJob(ctx, job, { onProgress: (e) => writeErr(`${progressLine(e)}\n`), interrupted: () => interrupted });
      } finally {
        process.off("SIGINT", onSigint);
      }
      output(run, () =>
        [`${run.job_name}: ${run.status} in ${run.duration_ms} ms (run ${run._id})${run.error && interrupted ? ` — ${run.error}` : ""}`, ...(run.steps ?? []).map((s) => `  ${stepLine(s)}`)].join("\n"),
      );
      if (interrupted) process.exitCode = EXIT_INTERRUPTED;
      else if (run.status !== "success") process.exitCode = EXIT_FAILED;
    });
  },
});
