import { defineCommand } from "citty";
import { judgeAsFleet, liveView, parseStored, requireJob } from "../../../control/jobs.ts";
import { fleetPlacement } from "../../../control/owners.ts";
import { FleetCronError, EXIT_FAILED, UsageError } from "../../../core/errors.ts";
import { describeSchedule, nextFires } from "../../../schedule/next.ts";
import { formatInZone } from "../../../schedule/zone.ts";
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
      const { judged: parsed } = judgeAsFleet(parseStored(await requireJob(store, args.name as string), Object.keys(config.secrets)), Object.keys(config.secrets), view);
      if (!parsed.job) throw new FleetCronError("E_INVALID_JOB", `job "${args.name}" is invalid: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`, EXIT_FAILED);
      // A job without its own zone runs in the live agents' zone; this CLI's tz only when none reports one.
      const tz = parsed.job.tz ?? view.agentsTz ?? config.tz;
      const fires = nextFires(parsed.job.schedule, tz, from, count).map((ms) => ({ utc: new Date(ms).toISOString(), local: formatInZone(ms, tz) }));
      output({ name: parsed.job.name, schedule: describeSchedule(parsed.job.schedule), tz, from: new Date(from).toISOString(), fires }, () =>
        [`${parsed.job.name}: ${describeSchedule(parsed.job.schedule)} in ${tz}`, table([`LOCAL (${tz})`, "UTC"], fires.map((f) => [f.local, f.utc]))].join("\n"),
      );
    });
  },
});
