/**
 * `jitter_sec`: a job fires at its instant plus a fixed offset in [0, jitter) derived from its id,
 * the same on every agent and every run, so a thousand `0 * * * *` jobs spread over the window
 * while each keeps its own steady time. The occurrence is still named by its nominal instant.
 * FNV-1a (32-bit) over the UTF-16 code units of the id: stable across builds and processes.
 */
export function jitterOffsetMs(jobId: string, jitterMs: number | undefined): number {
  if (!jitterMs || jitterMs <= 0) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) {
    hash ^= jobId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % Math.max(1, Math.floor(jitterMs));
}
