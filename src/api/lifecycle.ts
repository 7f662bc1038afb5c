import type { Actor } from "../control/audit.ts";
import { FleetCronError } from "../core/errors.ts";

/**
 * The schedule lifecycle operations (pause, resume, backfill, retry) as the API and the page call
 * them. Their implementations live in `src/control/` beside the CLI's; this build has none, so the
 * default answers 501 and the agent's wiring (src/cli/commands/run.ts) passes real ones in when
 * they exist. Each returns a JSON-able result and throws a FleetCronError (E_NO_JOB → 404,
 * E_NO_RUN → 404, E_USAGE → 400, other refusals → 409) when it does not act.
 */
export interface LifecycleOps {
  pause(input: { job: string; note?: string; until?: string; actor: Actor; now: number }): Promise<unknown>;
  resume(input: { job: string; actor: Actor; now: number }): Promise<unknown>;
  backfill(input: { job: string; from: string; to: string; dryRun?: boolean; max?: number; concurrency?: number; actor: Actor; now: number }): Promise<unknown>;
  retry(input: { runId: string; actor: Actor; now: number }): Promise<unknown>;
}

export const LIFECYCLE_OPERATIONS = ["pause", "resume", "backfill", "retry"] as const;

function unavailable(operation: string): never {
  throw new FleetCronError("E_NOT_AVAILABLE", `${operation} is not available in this build (the lifecycle operations are not wired into the API yet)`);
}

export const UNAVAILABLE_LIFECYCLE: LifecycleOps = {
  pause: async () => unavailable("pause"),
  resume: async () => unavailable("resume"),
  backfill: async () => unavailable("backfill"),
  retry: async () => unavailable("retry"),
};
