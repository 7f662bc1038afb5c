import { defineCommand } from "citty";
import { listAuditEntries, type AuditEntry } from "../../control/audit.ts";
import { UsageError } from "../../core/errors.ts";
import { createRedactor } from "../../core/redact.ts";
import { globalArgs } from "../_globals.ts";
import { output, table } from "../_output.ts";
import { withStore } from "../_runtime.ts";

/** What changed in a document, as `key: before → after` for the fields that differ (one level deep). */
function changedFields(e: AuditEntry): string {
  if (!e.before || !e.after) return "";
  const keys = [...new Set([...Object.keys(e.before), ...Object.keys(e.after)])];
  const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(e.before![k]) !== JSON.stringify(e.after![k]))
    .map((k) => `${k}: ${show(e.before![k])} → ${show(e.after![k])}`)
    .join("; ");
}

export default defineCommand({
  meta: { name: "audit", description: "Who changed what: every change through the CLI, the API, the page and jobs_file, newest first" },
  args: {
    ...globalArgs,
    job: { type: "string", description: "Only changes of this job (by name)" },
    limit: { type: "string", default: "50", description: "How many" },
  },
  async run({ args }) {
    const limit = Number(args.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit must be a whole number 1-10000 (got "${args.limit}")`);
    await withStore(async ({ store, config }) => {
      const entries = await listAuditEntries(store, { limit, ...(args.job ? { job: args.job as string } : {}) }, createRedactor(Object.values(config.secrets)));
      output({ entries }, () =>
        entries.length === 0
          ? `no changes recorded${args.job ? ` for job "${args.job}"` : ""}`
          : table(
              ["WHEN (UTC)", "ACTOR", "VIA", "ACTION", "JOB", "DETAIL"],
              entries.map((e) => [e.at, e.actor, e.via, e.action, e.job, [e.run_id ? `run ${e.run_id}` : "", e.note ?? "", changedFields(e)].filter(Boolean).join(" · ")]),
            ),
      );
    });
  },
});
