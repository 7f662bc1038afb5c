/**
 * pg-boss settings the bench uses, shared by its worker process and the report's "settings" column.
 * Defaults (pg-boss 12): a cron pass every 30 s, the cron worker polls every 5 s, workers poll every
 * 2 s one job at a time, a dead worker's job is retried when it expires (15 min), supervise and
 * monitor passes every 60 s. Tight: each at its documented minimum.
 */
export const tightInstance = {
  cronMonitorIntervalSeconds: 1,
  cronWorkerIntervalSeconds: 1,
  superviseIntervalSeconds: 1,
  monitorIntervalSeconds: 1,
  useListenNotify: true,
} as const;

export const tightWork = { pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5, batchSize: 50, burstWhenBatchFull: true } as const;

/** A queue of the tight settings: wake workers by NOTIFY; a job whose worker stopped heartbeating is retried after 10 s (the minimum). */
export const tightQueue = { notify: true, heartbeatSeconds: 10, retryDelay: 0 } as const;

export const PGBOSS_TIGHT_LABEL = "cron pass + cron worker every 1 s, LISTEN/NOTIFY, poll 0.5 s, batch 50";
export const PGBOSS_DEFAULT_LABEL = "defaults (cron pass every 30 s, cron worker every 5 s, poll 2 s, batch 1)";
