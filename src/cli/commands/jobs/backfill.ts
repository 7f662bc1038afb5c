import { defineCommand } from "citty";
import { BACKFILL_DEFAULT_MAX, planBackfill, runBackfill, summarize } from "../../../control/backfill.ts";
import { parseStored, requireJob } from "../../../control/jobs.ts";
import { FleetCronError, EXIT_FAILED, UsageError } from "../../../core/errors.ts";
import { displayTime } from "../../../schedule/display.ts";
import { globalArgs, globalFlags } from "../../_globals.ts";
import { output, table, writeErr } from "../../_output.ts";
import { executeContext, withStore } from "../../_runtime.ts";

function instantArg(name: string, text: unknown): number {
  const ms = Date.parse(String(text));
  if (typeof text !== "string" || !Number.isFinite(ms) || !/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) {
    throw new UsageError(`--${name} must be an ISO time with an offset or Z, such as 2026-12-01T00:00:00Z (got "${text}")`);
  }
  return ms;
}

function wholeArg(name: string, text: unknown, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new UsageError(`--${name} must be a whole number 1-100000 (got "${text}")`);
  return n;
}

export default defineCommand({
  meta: { name: "backfill", description: "Run the occurrences of a past range that never ran (no record, or missed), each once across the fleet" },
  args: {
    ...globalArgs,
    name: { type: "positional", required: true, description: "Job name" },
    from: { type: "string", required: true, description: "Range start, ISO with offset (inclusive)" },
    to: { type: "string", required: true, description: "Range end, ISO with offset (inclusive, not in the future)" },
    "dry-run": { type: "boolean", description: "List what would run; change nothing" },
    max: { type: "string", description: `Refuse a range with more occurrences than this (default ${BACKFILL_DEFAULT_MAX})` },
    concurrency: { type: "string", description: "Occurrences run at once (default 1: in order)" },
  },
  async run({ args }) {
    const from = instantArg("from", args.from);
    const to = instantArg("to", args.to);
    const max = wholeArg("max", args.max, BACKFILL_DEFAULT_MAX);
    const concurrency = wholeArg("concurrency", args.concurrency, 1);
    await withStore(async (rt) => {
      const parsed = parseStored(await requireJob(rt.store, args.name as string), Object.keys(rt.config.secrets));
      if (!parsed.job) throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid and cannot run:\n${parsed.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")}`, EXIT_FAILED);
      const job = parsed.job;
      const tz = job.tz ?? rt.config.tz;
      const plan = await planBackfill(rt.store, job, tz, { from, to, max, now: Date.now() });
      const rows = () => table(["OCCURRENCE (LOCAL)", "BEFORE", "ACTION", "ATTEMPT", "RESULT"], plan.items.map((i) => [displayTime(Date.parse(i.scheduled_for), tz), i.before ?? "no record", i.action, i.attempt, i.result ?? (i.action === "keep" ? "-" : args["dry-run"] ? "(dry run)" : "-")]));
      if (args["dry-run"]) {
        const summary = summarize(plan);
        output({ dry_run: true, ...plan, summary }, () => `${rows()}\n${plan.job}: ${summary.occurrences} occurrence(s) in range, ${summary.to_run} would run, ${summary.kept} kept (dry run: nothing changed)`);
        return;
      }
      const abort = new AbortController();
      process.once("SIGINT", () => abort.abort());
      const progress = process.stderr.isTTY && !globalFlags.json;
      const summary = await runBackfill(executeContext(rt, abort.signal), job, plan, {
        concurrency,
        onProgress: progress ? (done, total, item) => writeErr(`\rbackfill ${plan.job}: ${done}/${total} (${item.scheduled_for} ${item.result})\x1b[K`) : undefined,
      });
      if (progress) writeErr("\n");
      output({ dry_run: false, ...plan, summary }, () =>
        `${rows()}\n${plan.job}: ${summary.occurrences} occurrence(s) in range; ran ${summary.ran} (${summary.succeeded} succeeded, ${summary.failed} failed), ${summary.taken} taken by another backfill or agent, ${summary.kept} kept as they were` +
          (abort.signal.aborted ? "\ninterrupted: run the same backfill again to continue" : ""),
      );
      if (summary.failed > 0 || abort.signal.aborted) process.exitCode = EXIT_FAILED;
    });
  },
});
