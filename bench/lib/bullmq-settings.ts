/**
 * BullMQ settings the bench uses, shared by its worker process and the report's "settings" column.
 * Defaults (BullMQ 6): concurrency 1 per worker, a job's lock lasts 30 s (renewed every 15 s) and
 * stalled jobs are looked for every 30 s, so a killed worker's job runs again 30–60 s later.
 * Tight: FleetCron's concurrency (50, as for Agenda), a 2 s lock and a stalled check every second.
 */
export const tightWorker = { concurrency: 50, lockDuration: 2000, stalledInterval: 1000 } as const;

export const BULLMQ_TIGHT_LABEL = "concurrency 50, lockDuration 2 s, stalledInterval 1 s";
export const BULLMQ_DEFAULT_LABEL = "defaults (concurrency 1, lockDuration 30 s, stalledInterval 30 s)";
