import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { judgeAsFleet, liveView, parseStored, requireJob } from "../../../control/jobs.ts";
import { fleetPlacement, ownerOf } from "../../../control/owners.ts";
import { triggerJob, triggerThroughAgent, type RemoteTriggerOutcome, type TriggerProgress } from "../../../control/trigger.ts";
import { systemClock } from "../../../core/clock.ts";
import type { Job } from "../../../jobs/types.ts";
import type { Store } from "../../../store/types.ts";
import { FleetCronError, EXIT_FAILED } from "../../../core/errors.ts";
import type { Logger } from "../../../core/logger.ts";
import { globalArgs } from "../../_globals.ts";
import { output, stepLine, writeErr } from "../../_output.ts";
import { executeContext, withStore, type Runtime } from "../../_runtime.ts";

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
  meta: { name: "trigger", description: "Run one manual occurrence now (exactly once across the fleet): by the job's owner, or here with --local; print its progress, then the result" },
  args: {
    ...globalArgs,
    name: { type: "positional", required: true, description: "Job name" },
    local: { type: "boolean", description: "Run it here, in this process, instead of asking the job's owner (this machine must reach the target)" },
  },
  async run({ args }) {
    await withStore(async (rt) => {
      const doc = await requireJob(rt.store, args.name as string);
      const keys = templateKeys(rt.config);
      const fleet = fleetPlacement(await rt.store.listMachines(), Date.now(), rt.config.dead_after_sec * 1000, rt.config.placement);
      // Asked of the fleet, the job is judged as the fleet judges it (this CLI may lack the agents' secrets).
      const parsed = args.local ? parseStored(doc, keys) : judgeAsFleet(parseStored(doc, keys), keys, await liveView(rt.store, fleet)).judged;
      if (!parsed.job) {
        throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid and cannot run:\n${parsed.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`, EXIT_FAILED);
      }
      const job = parsed.job;
      if (!args.local) {
        const { owner, note } = ownerOf(job, fleet);
        if (owner) return await triggerOnOwner(rt, job, owner);
        writeErr(`${job.name}: ${note ?? "no live agent may run it"}: running it here, in this process, instead\n`);
      }
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
      if (args.local) writeErr(`${job.name}: running here, in this process (machine ${ctx.machineId}), as --local asks\n`);
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

/**
 * The job's owner runs it (the CLI's machine may not reach the target), and this waits for the
 * record, saying every 5 s what it waits for; Ctrl-C stops the waiting, not the run.
 */
async function triggerOnOwner(rt: Runtime & { store: Store }, job: Job, owner: string): Promise<void> {
  writeErr(`${job.name}: asked agent ${owner} (the job's owner) to run it; waiting for the result (--local runs it here instead)\n`);
  const stopWaiting = new AbortController();
  const onSigint = () => stopWaiting.abort();
  process.on("SIGINT", onSigint);
  let outcome: RemoteTriggerOutcome;
  try {
    outcome = await triggerThroughAgent({ store: rt.store, clock: systemClock }, job, owner, {
      // The agent reads its command inbox at each heartbeat: three of them, and a margin.
      answerTimeoutMs: 3 * rt.config.heartbeat_sec * 1000 + 2000,
      resultTimeoutMs: 15 * 60_000,
      signal: stopWaiting.signal,
      onWaiting: (ms, run) => writeErr(`  … ${run ? `running on ${owner}` : `waiting for ${owner} to claim it`} (${Math.round(ms / 1000)} s)\n`),
    });
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (outcome.kind === "refused") throw new FleetCronError("E_TRIGGER_REFUSED", `agent ${owner} did not run "${job.name}": ${outcome.error}; \`fleetcron jobs trigger --local\` runs it here`, EXIT_FAILED);
  if (outcome.kind === "no-answer") {
    throw new FleetCronError("E_TRIGGER_NO_ANSWER", `agent ${owner} did not answer within ${Math.round(outcome.waitedMs / 1000)} s (it reads commands at each heartbeat); \`fleetcron jobs trigger --local\` runs it here`, EXIT_FAILED);
  }
  const run = outcome.run;
  if (outcome.kind === "still-running") {
    output(run, () => `${run.job_name}: still running on ${owner} after ${Math.round(outcome.waitedMs / 1000)} s (run ${run._id}); \`fleetcron runs show ${run._id}\` shows it when it ends`);
    process.exitCode = stopWaiting.signal.aborted ? EXIT_INTERRUPTED : EXIT_FAILED;
    return;
  }
  output(run, () => [`${run.job_name}: ${run.status} in ${run.duration_ms} ms on ${owner} (run ${run._id})`, ...(run.steps ?? []).map((s) => `  ${stepLine(s)}`)].join("\n"));
  if (run.status !== "success") process.exitCode = EXIT_FAILED;
}
