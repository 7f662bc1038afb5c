/**
 * Occurrence keys (docs/protocol.md, "The one primitive"). An occurrence is named by its job and UTC instant, so every agent
 * computes the same key without talking to the others, and the store's unique `_id` decides.
 */
export function occurrenceId(jobId: string, instantMs: number): string {
  return `${jobId}@${new Date(instantMs).toISOString()}`;
}

/** Manual triggers are not on the schedule: each one gets a fresh key. */
export function manualOccurrenceId(jobId: string, instantMs: number): string {
  return `${jobId}@${new Date(instantMs).toISOString()}!manual-${crypto.randomUUID().slice(0, 8)}`;
}

/** Attempt 1 is stored under the occurrence key itself, later attempts under `key#N`. */
export function attemptId(runId: string, attempt: number): string {
  return attempt === 1 ? runId : `${runId}#${attempt}`;
}

/** The `_id` of the attempt after the one stored under `id` (`key` → `key#2`, `key#2` → `key#3`). */
export function nextAttemptId(id: string): string {
  const numbered = /^(.*)#(\d+)$/.exec(id);
  return numbered ? `${numbered[1]}#${Number(numbered[2]) + 1}` : `${id}#2`;
}
