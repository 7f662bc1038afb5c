import { templateKeys } from "../../../config/load.ts";
import { defineCommand } from "citty";
import { judgeAsFleet, liveView, parseStored, requireJob } from "../../../control/jobs.ts";
import { fleetPlacement } from "../../../control/owners.ts";
import { FleetCronError, EXIT_FAILED, UsageError } from "../../../core/errors.ts";
import { jitterOffsetMs } from "../../../schedule/jitter.ts";
import { pausedAt, resumesAt } from "../../../jobs/pause.ts";
import { describeSchedule, nextFires } from "../../../schedule/next.ts";
import { displayTime } from "../../../schedule/display.ts";
import { globalArgs } from "../../_globals.ts";
import { output, table } from "../../_output.ts";
import { withStore } from "../../_runtime.ts";

export default defineCommand({
  meta: { name: "next", description: "The next fire instants of a job, in its zone and in UTC (DST visible)" },
  args: {
    ...globalArgs,
    name: { type: "positional", required: true, description: "Job name" },
    count: { type: "string", default: "5", description: "How many" },
    from: { type: "string", description: "Start after this ISO instant instead of now (e.g. 2026-03-08T00:00:00Z)" },
  },
  async run({ args }) {
    const count = Number(args.count);
    if (!Number.isInteger(count) || count < 1 || count > 1000) throw new UsageError(`--count must be a whole number 1-1000 (got "${args.count}")`);
    const from = args.from ? Date.parse(args.from as string) : Date.now();
    if (Number.isNaN(from)) throw new UsageError(`--from must be an ISO date-time such as 2026-03-08T00:00:00Z (got "${args.from}")`);
    await withStore(async ({ store, config }) => {
      const now = Date.now();
      const view = await liveView(store, fleetPlacement(await store.listMachines(), now, config.dead_after_sec * 1000, config.placement));
      const { judged: parsed } = judgeAsFleet(parseStored(await requireJob(store, args.name as string), templateKeys(config)), templateKeys(config), view);
      if (!parsed.job) throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`, EXIT_FAILED);
      // A job without its own zone runs in the live agents' zone; this CLI's tz only when none reports one.
      const tz = parsed.job.tz ?? view.agentsTz ?? config.tz;
      // A paused job fires again at `until` (or not before `jobs resume`): its next fires start there.
      const resumeAt = parsed.job.paused && pausedAt(parsed.job, from) ? resumesAt(parsed.job) : undefined;
      const start = resumeAt === undefined || resumeAt === null ? from : Math.max(from, resumeAt - 1);
      // With jitter_sec the occurrence keeps its instant and fires a fixed offset after it.
      const offset = jitterOffsetMs(parsed.job.id, parsed.job.jitter_ms);
      const fires =
        resumeAt === null
          ? []
          : nextFires(parsed.job.schedule, tz, start, count).map((ms) => ({
              utc: new Date(ms).toISOString(),
              local: displayTime(ms, tz),
              ...(offset > 0 ? { fires_at: new Date(ms + offset).toISOString() } : {}),
            }));
      const paused = resumeAt === undefined ? null : resumeAt === null ? "paused until `jobs resume`" : `paused until ${displayTime(resumeAt, tz)}`;
      const notes = [paused, offset > 0 ? `jitter: fires ${(offset / 1000).toFixed(1)} s after each instant` : null].filter(Boolean);
      const columns = [`LOCAL (${tz})`, "UTC", ...(offset > 0 ? ["FIRES (UTC)"] : [])];
      output({ name: parsed.job.name, schedule: describeSchedule(parsed.job.schedule), tz, from: new Date(from).toISOString(), paused, ...(offset > 0 ? { jitter_offset_ms: offset } : {}), fires }, () =>
        [
          `${parsed.job.name}: ${describeSchedule(parsed.job.schedule)} in ${tz}${notes.length ? ` (${notes.join("; ")})` : ""}`,
          ...(fires.length ? [table(columns, fires.map((f) => [f.local, f.utc, ...(f.fires_at ? [f.fires_at] : [])]))] : []),
        ].join("\n"),
      );
    });
  },
});
