import type { JobSummary } from "../control/jobs.ts";

/**
 * Notes that say whose judgement a listing shows where it is not the agents': validity judged
 * with this CLI's config (which may lack the agents' secrets) and a zone taken from this CLI's `tz`.
 */
export function judgementNotes(jobs: JobSummary[], cliTz: string): string[] {
  const notes: string[] = [];
  const guessed = jobs.filter((j) => !j.valid && j.judged_by === "cli" && j.missing_secrets.length > 0);
  for (const j of guessed) notes.push(`"${j.name}": INVALID as judged with this CLI's config, which lacks secret(s) ${j.missing_secrets.join(", ")}; agents that have them may run it`);
  const byAgents = jobs.filter((j) => j.judged_by === "agents");
  if (byAgents.length) notes.push(`valid as the agents report (this CLI's config lacks their secrets): ${byAgents.map((j) => `"${j.name}"`).join(", ")}`);
  const invalid = jobs.filter((j) => !j.valid && !guessed.includes(j));
  if (invalid.length) notes.push(`${invalid.length} invalid job(s) are skipped by every agent; \`fleetcron jobs show NAME\` lists the problems`);
  const zoneOfAgents = jobs.find((j) => j.tz_source === "agents")?.tz;
  if (zoneOfAgents) notes.push(`jobs without their own tz run in ${zoneOfAgents}, the agents' zone`);
  else if (jobs.some((j) => j.tz_source === "cli")) notes.push(`jobs without their own tz are shown in ${cliTz}, this CLI's tz (no live agent reports its zone)`);
  return notes;
}
