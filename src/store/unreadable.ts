import type { JobDocument } from "./types.ts";

/**
 * A stored job a backend could not decode (nested deeper than its parser reaches, corrupt text)
 * comes back as this stand-in instead of failing the whole listing: validation reports it as an
 * invalid job under its id and name, and every other job keeps running. `$` cannot start a field
 * of a job FleetCron wrote (jobs/schema.ts refuses such keys), so it never collides with one.
 */
export const UNREADABLE_FIELD = "$unreadable";

export function unreadableJob(id: string, name: unknown, why: string): JobDocument {
  return { _id: id, ...(typeof name === "string" ? { name } : {}), [UNREADABLE_FIELD]: why };
}
