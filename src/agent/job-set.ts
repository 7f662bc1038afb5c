import type { SecretScope } from "../executor/secret-hosts.ts";
import { printable } from "../core/printable.ts";
import { parseJobDocument } from "../jobs/schema.ts";
import type { InvalidJob, Job } from "../jobs/types.ts";
import type { Store } from "../store/types.ts";

export interface JobSet {
  /** Valid, enabled jobs by id. */
  jobs: Map<string, Job>;
  /** Documents that failed validation: reported and skipped, never run. */
  invalid: InvalidJob[];
  /** Serialized document per job, to tell an edited job from an unchanged one on reload. */
  fingerprints: Map<string, string>;
  /** When FleetCron last wrote the job (absent for hand-written documents): catch-up never reaches before it. */
  updatedAt: Map<string, number>;
}

/**
 * Reads and validates every job document; one bad document never stops the others. A job naming
 * a flow-control limit this agent's config lacks is invalid here: run unlimited, it could break
 * the bound its owner keeps for the fleet.
 */
export async function loadJobSet(store: Pick<Store, "listJobs">, secretKeys: string[], secretScope?: SecretScope, limitKeys: string[] = []): Promise<JobSet> {
  const set: JobSet = { jobs: new Map(), invalid: [], fingerprints: new Map(), updatedAt: new Map() };
  for (const doc of await store.listJobs()) {
    const parsed = parseJobDocument(doc, { secretKeys, id: doc._id, label: typeof doc.name === "string" ? doc.name : doc._id, ...(secretScope ? { secretScope } : {}) });
    if (!parsed.ok) {
      set.invalid.push({ id: doc._id, name: typeof doc.name === "string" ? printable(doc.name) : `(unnamed ${doc._id})`, problems: parsed.problems });
      continue;
    }
    if (parsed.job.limit !== undefined && !limitKeys.includes(parsed.job.limit)) {
      const known = limitKeys.length > 0 ? `it defines ${limitKeys.map((k) => `"${k}"`).join(", ")}` : "it defines none";
      set.invalid.push({
        id: doc._id,
        name: parsed.job.name,
        problems: [{ job: parsed.job.name, path: "limit", message: `names "${parsed.job.limit}", which is not in this agent's config limits (${known}); add it to every agent's config` }],
      });
      continue;
    }
    if (!parsed.job.enabled) continue;
    set.jobs.set(doc._id, { ...parsed.job, id: doc._id });
    set.fingerprints.set(doc._id, JSON.stringify(doc));
    const updated = doc.updated_at instanceof Date ? doc.updated_at.getTime() : typeof doc.updated_at === "string" ? Date.parse(doc.updated_at) : NaN;
    if (Number.isFinite(updated)) set.updatedAt.set(doc._id, updated);
  }
  return set;
}
