import { displayTime } from "../schedule/display.ts";
import type { AgentSnapshot } from "./observer.ts";
import type { MachineSummary } from "../control/machines.ts";
import type { StepRecord } from "../store/types.ts";
import type { Health } from "./health.ts";
import { FAILED, type JobView, type RunView, type StatusData } from "./status-data.ts";

/**
 * The status page: server-rendered HTML, no script, one inline stylesheet. Every value from the
 * store passes through `esc` (job names, reasons and response bodies are user-controlled text).
 * Tables turn into stacked cards on a narrow screen; the page reloads itself.
 */

export const REFRESH_SEC = 15;
const RESPONSE_CHARS = 2000;

export function esc(value: unknown): string {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** "4 s ago", "in 3 min". */
export function ago(iso: string | null, now: number): string {
  if (!iso) return "-";
  const delta = Date.parse(iso) - now;
  const abs = Math.abs(delta) / 1000;
  const text = abs < 90 ? `${Math.round(abs)} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 129600 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** Local time in the job's zone (date-fns-tz, display only), or UTC when the zone is unknown. */
function localOrUtc(iso: string, tz: string): string {
  try {
    return displayTime(Date.parse(iso), tz);
  } catch {
    return utc(iso);
  }
}

function utc(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : "-";
}

function seconds(ms: number | null): string {
  if (ms === null) return "-";
  return Math.abs(ms) < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms / 1000)} s`;
}

function badge(status: string): string {
  const kind = FAILED.includes(status as never) ? "bad" : status === "success" ? "good" : status === "running" ? "info" : "warn";
  return `<span class="badge ${kind}">${esc(status)}</span>`;
}

const STYLE = `
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1b1f24;--muted:#5b6470;--card:#fff;--line:#dde1e6;--good:#137a3a;--bad:#b42318;--warn:#9a6700;--info:#1f5fbf}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e6e9ed;--muted:#9aa4b0;--card:#1a1f25;--line:#2c333b;--good:#4cc27a;--bad:#ff6b5e;--warn:#e0b341;--info:#6ea8ff}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
main{max-width:1200px;margin:0 auto;padding:12px}
.banner{border-radius:10px;padding:14px 16px;margin-bottom:14px;color:#fff}.banner.ok{background:var(--good)}.banner.bad{background:var(--bad)}
.banner h1{margin:0;font-size:1.35rem}.banner p{margin:.3rem 0 0}.banner ul{margin:.5rem 0 0;padding-left:1.2rem}.banner li{margin:.15rem 0}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 12px;margin-bottom:14px}
h2{font-size:1.05rem;margin:.2rem 0 .6rem}h2 small{color:var(--muted);font-weight:normal}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:6px 8px;border-top:1px solid var(--line);vertical-align:top}th{font-size:.8rem;color:var(--muted);border-top:0}
.muted,small{color:var(--muted)}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.8rem;font-weight:600;border:1px solid currentColor}
.badge.good{color:var(--good)}.badge.bad{color:var(--bad)}.badge.warn{color:var(--warn)}.badge.info{color:var(--info)}
tr.failed td:first-child{box-shadow:inset 3px 0 var(--bad)}
details{margin-top:.3rem}summary{cursor:pointer;color:var(--info)}pre{white-space:pre-wrap;word-break:break-word;margin:.3rem 0;padding:.4rem;background:var(--bg);border-radius:6px;font-size:.8rem;max-height:16rem;overflow:auto}
.steps{margin:.3rem 0 0;padding-left:1.1rem}.steps li{margin:.2rem 0}
footer{color:var(--muted);font-size:.85rem;padding:0 4px 20px}footer a{color:var(--info)}
@media (max-width:700px){table,thead,tbody,tr,th,td{display:block}thead{display:none}tr{border-top:1px solid var(--line);padding:6px 0}td{border:0;padding:2px 4px}
td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.8rem}tr.failed{box-shadow:inset 3px 0 var(--bad);padding-left:6px}tr.failed td:first-child{box-shadow:none}}
`;

export interface PageInput {
  now: number;
  snapshot: AgentSnapshot;
  health: Health;
  /** null when the store could not be read: the page then says so and shows only this agent. */
  data: StatusData | null;
  storeError?: string;
}

/** What needs a human, most urgent first: the banner's list. */
export function attention(input: PageInput): string[] {
  const { data, health, now } = input;
  const items: string[] = [];
  if (!data) items.push(`the store cannot be read: ${input.storeError ?? "no answer"}`);
  for (const reason of health.reasons) items.push(`this agent (${input.snapshot.machineId}): ${reason}`);
  if (!data) return items;
  for (const job of data.jobs.list.filter((j) => j.failing)) {
    const last = job.last_run!;
    items.push(`"${job.name}" ${last.status === "missed" ? "missed" : last.status === "lost" ? "lost its run" : "failed"} ${ago(last.scheduled_for, now)}${last.machine_id ? ` on ${last.machine_id}` : ""}: ${last.error ?? "see its run"}`);
  }
  if (data.fleet.alive === 0) items.push("no agent is alive: nothing fires");
  for (const m of data.fleet.machines) {
    if (!m.alive && m.status !== "stopped") items.push(`machine ${m.machine_id} (${m.hostname}) not heard from for ${Math.round(m.seconds_since_seen)} s: dead or cut off from the store`);
    if (m.alive && m.clock_warning) items.push(`machine ${m.machine_id}: ${m.clock_warning}`);
  }
  for (const job of data.jobs.invalid) items.push(`job "${job.name}" is invalid and skipped: ${job.problems.map((p) => `${p.path || "(document)"}: ${p.message}`).join("; ")}`);
  for (const job of data.jobs.list) if (job.owner === null && job.owner_note && job.owner_note !== "no agent is running") items.push(`job "${job.name}" will not run: ${job.owner_note}`);
  return items;
}

export function renderStatusPage(input: PageInput): string {
  const { data, snapshot, now } = input;
  const items = attention(input);
  const ok = items.length === 0;
  const headline = ok ? "All clear" : `${items.length} ${items.length === 1 ? "thing needs" : "things need"} attention`;
  const summary = data
    ? `${data.fleet.alive} of ${data.fleet.machines.length} machine${data.fleet.machines.length === 1 ? "" : "s"} alive · primary ${data.fleet.primary ?? "none"} · ${data.jobs.enabled} of ${data.jobs.total} jobs enabled · store ${data.store.kind} (reachable)`
    : `store ${snapshot.store.kind} ${snapshot.store.location} (not readable)`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SEC}">
<title>${esc(ok ? "FleetCron — all clear" : `FleetCron — ${headline}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<header class="banner ${ok ? "ok" : "bad"}" id="summary">
<h1>${ok ? "✓" : "✗"} ${esc(headline)}</h1>
<p>${esc(summary)}</p>
${items.length ? `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join("")}</ul>` : ""}
</header>
${data ? [machinesSection(data, snapshot, now), jobsSection(data, now), runsSection(data, now)].join("\n") : ""}
<footer>
This page: agent <span class="mono">${esc(snapshot.machineId)}</span> (${esc(snapshot.hostname)}, FleetCron ${esc(snapshot.version)}, serial ${esc(snapshot.serial ?? "none")}) ·
generated ${esc(utc(new Date(now).toISOString()))} · reloads every ${REFRESH_SEC} s ·
<a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a>
</footer>
</main>
</body>
</html>
`;
}

function machinesSection(data: StatusData, snapshot: AgentSnapshot, now: number): string {
  const rows = data.fleet.machines.map((m: MachineSummary) => {
    const tags = [m.machine_id === snapshot.machineId ? "this agent" : null, m.machine_id === data.fleet.primary ? "primary" : null].filter(Boolean);
    return `<tr${!m.alive && m.status !== "stopped" ? ' class="failed"' : ""}>
<td data-label="Machine"><span class="mono">${esc(m.machine_id)}</span>${tags.length ? ` <small>(${esc(tags.join(", "))})</small>` : ""}<br><small>${esc(m.hostname)} · pid ${esc(m.pid)}</small></td>
<td data-label="Serial">${esc(m.serial ?? "-")}</td>
<td data-label="Alive">${m.alive ? '<span class="badge good">alive</span>' : `<span class="badge ${m.status === "stopped" ? "warn" : "bad"}">${m.status === "stopped" ? "stopped" : "not alive"}</span>`} <small>${esc(m.status)}</small></td>
<td data-label="Last seen">${esc(ago(m.last_seen, now))}</td>
<td data-label="Clock offset">${m.clock_offset_ms === null ? "-" : `${esc(m.clock_offset_ms)} ms`}${m.clock_warning ? `<br><span class="badge warn">${esc(m.clock_warning)}</span>` : ""}</td>
<td data-label="Version">${esc(m.version)}</td>
</tr>`;
  });
  return `<section id="machines">
<h2>Machines <small>${esc(`${data.fleet.alive} alive of ${data.fleet.machines.length}`)}</small></h2>
${rows.length ? `<table><thead><tr><th>Machine</th><th>Serial</th><th>Alive</th><th>Last seen</th><th>Clock offset</th><th>Version</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : '<p class="muted">No agent has run against this store yet.</p>'}
</section>`;
}

function jobsSection(data: StatusData, now: number): string {
  const order = (j: JobView) => (j.failing ? 0 : !j.valid ? 1 : 2);
  const jobs = [...data.jobs.list].sort((a, b) => order(a) - order(b) || (a.next_fire ?? "~").localeCompare(b.next_fire ?? "~") || a.name.localeCompare(b.name));
  const rows = jobs.map((j) => {
    const state = !j.valid
      ? '<span class="badge bad">invalid</span>'
      : !j.enabled
        ? '<span class="badge warn">disabled</span>'
        : j.paused
          ? `<span class="badge warn">paused</span> <small>by ${esc(j.paused.by)}${j.paused.until ? ` until ${esc(localOrUtc(j.paused.until, j.tz))}` : ""}${j.paused.note ? ` — ${esc(j.paused.note)}` : ""}</small>`
          : j.done
            ? `<span class="badge">done</span> <small>${esc(j.done.status)}</small>`
            : "";
    const last = j.last_run
      ? `${badge(j.last_run.status)} <small>${esc(ago(j.last_run.scheduled_for, now))}${j.last_run.machine_id ? ` on ${esc(j.last_run.machine_id)}` : ""}${j.last_run.attempt > 1 ? ` · attempt ${esc(j.last_run.attempt)}` : ""}</small>${j.last_run.error && j.last_run.status !== "success" ? `<br><small>${esc(j.last_run.error)}</small>` : ""}`
      : '<span class="muted">never ran</span>';
    const problems = j.problems.length ? `<ul class="steps">${j.problems.map((p) => `<li><span class="mono">${esc(p.path || "(document)")}</span>: ${esc(p.message)}</li>`).join("")}</ul>` : "";
    return `<tr${j.failing || !j.valid ? ' class="failed"' : ""}>
<td data-label="Job"><strong>${esc(j.name)}</strong> ${state}${problems}</td>
<td data-label="Schedule"><span class="mono">${esc(j.schedule)}</span></td>
<td data-label="Zone">${esc(j.tz)}</td>
<td data-label="Next">${j.next_fire ? `${esc(j.next_fire_local ?? "")}<br><small>${esc(utc(j.next_fire))} · ${esc(ago(j.next_fire, now))}</small>` : "-"}</td>
<td data-label="Last result">${last}</td>
</tr>`;
  });
  return `<section id="jobs">
<h2>Jobs <small>${esc(`${data.jobs.enabled} enabled of ${data.jobs.total}${data.jobs.invalid.length ? `, ${data.jobs.invalid.length} invalid` : ""}`)}</small></h2>
${rows.length ? `<table><thead><tr><th>Job</th><th>Schedule</th><th>Zone</th><th>Next fire (local · UTC)</th><th>Last result</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : '<p class="muted">No jobs yet: add some with <span class="mono">fleetcron jobs apply FILE</span>.</p>'}
</section>`;
}

/** Failed runs (error, lost, missed) first, each group newest first; recent_failures reach further back than recent_runs. */
export function runsInPageOrder(data: StatusData): RunView[] {
  const byId = new Map<string, RunView>();
  for (const r of [...data.recent_failures, ...data.recent_runs]) byId.set(r.id, r);
  const failed = (r: RunView) => FAILED.includes(r.status);
  const newest = (a: RunView, b: RunView) => b.scheduled_for.localeCompare(a.scheduled_for) || b.id.localeCompare(a.id);
  const all = [...byId.values()];
  return [...all.filter(failed).sort(newest), ...all.filter((r) => !failed(r)).sort(newest)];
}

function stepItem(step: StepRecord): string {
  const response = step.response ? `<details><summary>response${step.response.length > RESPONSE_CHARS ? ` (first ${RESPONSE_CHARS} characters)` : ""}</summary><pre>${esc(step.response.slice(0, RESPONSE_CHARS))}</pre></details>` : "";
  return `<li>${badge(step.status)} <strong>${esc(step.name)}</strong>${step.http_status !== undefined ? ` <span class="mono">HTTP ${esc(step.http_status)}</span>` : ""} <small>${esc(`${step.attempts} attempt${step.attempts === 1 ? "" : "s"}, ${step.duration_ms} ms`)}</small>${step.error ? `<br>${esc(step.error)}` : ""}${step.reason ? `<br><small>${esc(step.reason)}</small>` : ""}${response}</li>`;
}

const RUN_HEAD = "<thead><tr><th>Status</th><th>Job · why</th><th>Scheduled</th><th>Trigger</th><th>Machine</th><th>Took</th></tr></thead>";

function runRow(r: RunView, now: number, open: boolean): string {
  const failed = FAILED.includes(r.status);
  const why = r.status === "success" ? null : (r.error ?? r.reason);
  const steps = r.steps.length
    ? `<details${open ? " open" : ""}><summary>${esc(`${r.steps.length} step${r.steps.length === 1 ? "" : "s"}`)}</summary><ul class="steps">${r.steps.map(stepItem).join("")}</ul></details>`
    : "";
  return `<tr${failed ? ' class="failed"' : ""}>
<td data-label="Status">${badge(r.status)}${r.trigger === "alert" ? ' <span class="badge bad">alert</span>' : ""}</td>
<td data-label="Job"><strong>${esc(r.job)}</strong>${why ? `<br>${esc(why)}` : ""}${steps}</td>
<td data-label="Scheduled">${esc(utc(r.scheduled_for))}<br><small>${esc(ago(r.scheduled_for, now))}</small></td>
<td data-label="Trigger"><small>${esc(r.trigger)} · attempt ${esc(r.attempt)}</small></td>
<td data-label="Machine"><span class="mono">${esc(r.machine_id ?? "-")}</span></td>
<td data-label="Took"><small>${esc(seconds(r.duration_ms))}${r.lateness_ms !== null ? ` · ${esc(seconds(r.lateness_ms))} late` : ""}</small></td>
</tr>`;
}

/**
 * Runs, failures first (error, lost, missed, newest first), then the rest; the newest failure's
 * steps are open, every other run's steps one tap away.
 */
function runsSection(data: StatusData, now: number): string {
  const runs = runsInPageOrder(data);
  const failed = runs.filter((r) => FAILED.includes(r.status)).length;
  return `<section id="runs">
<h2>Runs <small>${esc(`failures first: ${failed} failed, ${runs.length - failed} other`)}</small></h2>
${runs.length ? `<table>${RUN_HEAD}<tbody>${runs.map((r, i) => runRow(r, now, i === 0 && failed > 0)).join("")}</tbody></table>` : '<p class="muted">No runs yet.</p>'}
</section>`;
}
