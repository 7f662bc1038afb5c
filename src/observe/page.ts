import { displayTime } from "../schedule/display.ts";
import type { AgentSnapshot } from "./observer.ts";
import type { ApiRole } from "../config/schema.ts";
import type { AuditEntry } from "../control/audit.ts";
import type { MachineSummary } from "../control/machines.ts";
import type { ValidationProblem } from "../jobs/types.ts";
import type { StepRecord } from "../store/types.ts";
import type { Health } from "./health.ts";
import { FAILED, type JobView, type RunView, type StatusData } from "./status-data.ts";

/**
 * The status page: server-rendered HTML, no script, one inline stylesheet. Every value from the
 * store passes through `esc` (job names, reasons and response bodies are user-controlled text).
 * Tables turn into stacked cards on a narrow screen; the page reloads itself. With `api_tokens`
 * configured it is behind a login, and its actions are plain forms (POST, CSRF token, server
 * redirect): they work without script, which the CSP forbids anyway.
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
.flash{border-radius:10px;padding:10px 14px;margin-bottom:14px;border:1px solid currentColor;background:var(--card)}.flash.good{color:var(--good)}.flash.bad{color:var(--bad)}.flash.info{color:var(--info)}
.flash p{margin:0;color:var(--fg)}.flash ul{margin:.3rem 0 0;padding-left:1.2rem;color:var(--fg)}
.actions{display:flex;flex-wrap:wrap;gap:4px;align-items:center}.actions form{display:inline-flex;gap:4px;margin:0;flex-wrap:wrap}
button,.button{font:inherit;font-size:.85rem;padding:2px 10px;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--fg);cursor:pointer;text-decoration:none;display:inline-block}
button:hover,.button:hover{border-color:var(--info)}button.primary{background:var(--info);color:#fff;border-color:var(--info)}
input[type=text],input[type=password]{font:inherit;font-size:.85rem;padding:2px 6px;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--fg);max-width:11rem}
textarea{width:100%;min-height:24rem;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;background:var(--bg);color:var(--fg);border:1px solid var(--line);border-radius:6px;padding:8px}
.strip{display:flex;flex-wrap:wrap;gap:2px;margin-top:4px}.sq{display:block;width:10px;height:10px;border-radius:2px;background:var(--line)}
.sq.good{background:var(--good)}.sq.bad{background:var(--bad)}.sq.warn{background:var(--warn)}.sq.info{background:var(--info)}
svg.chart{display:block;margin-top:4px;max-width:100%;height:auto}svg.chart .dur{stroke:var(--info);fill:none}svg.chart .late{stroke:var(--warn);fill:none}
svg.chart .axis{stroke:var(--line)}svg.chart text{fill:var(--muted);font-size:9px}svg.chart circle.dur{fill:var(--info)}svg.chart circle.late{fill:var(--warn)}
.legend{font-size:.75rem;color:var(--muted)}.legend .d{color:var(--info)}.legend .l{color:var(--warn)}
.login{max-width:26rem;margin:10vh auto}.login form{display:flex;gap:6px;flex-wrap:wrap}.login input{flex:1;max-width:none}
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
  /** Who is looking (a page session) and what they may do; absent: the read-only page. */
  ui?: PageUi;
  /** Per-job history for the run strips and charts, and the audit log (absent: not shown). */
  extras?: PageExtras;
}

export interface PageUi {
  /** The session's token name and role; null when no tokens are configured (nobody can act). */
  user: string | null;
  role: ApiRole | null;
  csrf: string | null;
  flash: { kind: "good" | "bad" | "info"; text: string; problems?: { path: string; message: string }[] }[];
}

export interface PageExtras {
  /** Run records by job id, newest first (what the strip and the chart draw). */
  history: Map<string, RunView[]>;
  audit: AuditEntry[];
}

const ROLE_RANK: Record<ApiRole, number> = { read: 0, operate: 1, admin: 2 };
function may(ui: PageUi | undefined, need: ApiRole): boolean {
  return Boolean(ui?.role && ui.csrf && ROLE_RANK[ui.role] >= ROLE_RANK[need]);
}

/** A path segment for a job name or run id in the page's own URLs. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A form that posts one action; every form carries the session's CSRF token. */
function actionForm(ui: PageUi, action: string, label: string, fields = "", primary = false): string {
  return `<form method="post" action="${esc(action)}"><input type="hidden" name="csrf" value="${esc(ui.csrf)}">${fields}<button type="submit"${primary ? ' class="primary"' : ""}>${esc(label)}</button></form>`;
}

function flashBlock(ui: PageUi | undefined): string {
  if (!ui?.flash.length) return "";
  return ui.flash
    .map(
      (f) =>
        `<div class="flash ${f.kind}" role="status"><p>${esc(f.text)}</p>${f.problems?.length ? `<ul>${f.problems.map((p) => `<li><span class="mono">${esc(p.path || "(document)")}</span>: ${esc(p.message)}</li>`).join("")}</ul>` : ""}</div>`,
    )
    .join("\n");
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
  // A page with forms does not reload itself: it would wipe a half-typed note. Actions redirect
  // back to it, and "Refresh" is one click.
  const refresh = !may(input.ui, "operate");
  const summary = data
    ? `${data.fleet.alive} of ${data.fleet.machines.length} machine${data.fleet.machines.length === 1 ? "" : "s"} alive · primary ${data.fleet.primary ?? "none"} · ${data.jobs.enabled} of ${data.jobs.total} jobs enabled · store ${data.store.kind} (reachable)`
    : `store ${snapshot.store.kind} ${snapshot.store.location} (not readable)`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh ? `<meta http-equiv="refresh" content="${REFRESH_SEC}">\n` : ""}<title>${esc(ok ? "FleetCron — all clear" : `FleetCron — ${headline}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${flashBlock(input.ui)}
<header class="banner ${ok ? "ok" : "bad"}" id="summary">
<h1>${ok ? "✓" : "✗"} ${esc(headline)}</h1>
<p>${esc(summary)}</p>
${items.length ? `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join("")}</ul>` : ""}
</header>
${data ? [machinesSection(data, snapshot, now), jobsSection(data, now, input.ui, input.extras), runsSection(data, now, input.ui), input.extras ? auditSection(input.extras.audit, now) : ""].join("\n") : ""}
<footer>
This page: agent <span class="mono">${esc(snapshot.machineId)}</span> (${esc(snapshot.hostname)}, FleetCron ${esc(snapshot.version)}, serial ${esc(snapshot.serial ?? "none")}) ·
generated ${esc(utc(new Date(now).toISOString()))} · ${refresh ? `reloads every ${REFRESH_SEC} s` : '<a href="/">Refresh</a>'} ·
<a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/api/v1/openapi.json">API</a>${input.ui?.user ? ` · signed in as <strong>${esc(input.ui.user)}</strong> (${esc(input.ui.role)}) ${input.ui.csrf ? actionForm(input.ui, "/logout", "Sign out") : ""}` : ""}
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

function jobsSection(data: StatusData, now: number, ui?: PageUi, extras?: PageExtras): string {
  const order = (j: JobView) => (j.failing ? 0 : !j.valid ? 1 : 2);
  const jobs = [...data.jobs.list].sort((a, b) => order(a) - order(b) || (a.next_fire ?? "~").localeCompare(b.next_fire ?? "~") || a.name.localeCompare(b.name));
  const acting = may(ui, "operate");
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
    const history = extras?.history.get(j.id);
    const pictures = history ? `${runStrip(history)}${durationChart(history, now)}` : "";
    return `<tr id="job-${esc(seg(j.name))}"${j.failing || !j.valid ? ' class="failed"' : ""}>
<td data-label="Job"><strong>${esc(j.name)}</strong> ${state}${problems}${pictures}</td>
<td data-label="Schedule"><span class="mono">${esc(j.schedule)}</span></td>
<td data-label="Zone">${esc(j.tz)}</td>
<td data-label="Next">${j.next_fire ? `${esc(j.next_fire_local ?? "")}<br><small>${esc(utc(j.next_fire))} · ${esc(ago(j.next_fire, now))}</small>` : "-"}</td>
<td data-label="Last result">${last}</td>
${acting ? `<td data-label="Actions">${jobActions(ui!, j)}</td>` : ""}
</tr>`;
  });
  return `<section id="jobs">
<h2>Jobs <small>${esc(`${data.jobs.enabled} enabled of ${data.jobs.total}${data.jobs.invalid.length ? `, ${data.jobs.invalid.length} invalid` : ""}`)}</small></h2>
${rows.length ? `<table><thead><tr><th>Job</th><th>Schedule</th><th>Zone</th><th>Next fire (local · UTC)</th><th>Last result</th>${acting ? "<th>Actions</th>" : ""}</tr></thead><tbody>${rows.join("")}</tbody></table>` : '<p class="muted">No jobs yet: add some with <span class="mono">fleetcron jobs apply FILE</span>.</p>'}
</section>`;
}

function jobActions(ui: PageUi, j: JobView): string {
  const base = `/ui/jobs/${seg(j.name)}`;
  const parts = [
    j.valid ? actionForm(ui, `${base}/trigger`, "Run now", "", true) : "",
    actionForm(ui, `${base}/${j.enabled ? "disable" : "enable"}`, j.enabled ? "Disable" : "Enable"),
    j.paused
      ? actionForm(ui, `${base}/resume`, "Resume")
      : actionForm(ui, `${base}/pause`, "Pause", `<input type="text" name="note" placeholder="note" aria-label="Pause note for ${esc(j.name)}"><input type="text" name="until" placeholder="until (2h, ISO)" aria-label="Pause until">`),
    may(ui, "admin") ? `<a class="button" href="${esc(`${base}/edit`)}">Edit</a>` : "",
  ];
  return `<div class="actions">${parts.join("")}</div>`;
}

const STRIP_LENGTH = 30;

function outcomeKind(status: string): string {
  return FAILED.includes(status as never) ? "bad" : status === "success" ? "good" : status === "running" ? "info" : "warn";
}

/** One record per occurrence (its latest attempt), newest first. */
function occurrences(history: RunView[]): RunView[] {
  const byOccurrence = new Map<string, RunView>();
  for (const r of history) {
    if (r.trigger === "alert") continue;
    const seen = byOccurrence.get(r.run_id);
    if (!seen || r.attempt > seen.attempt) byOccurrence.set(r.run_id, r);
  }
  return [...byOccurrence.values()].sort((a, b) => b.scheduled_for.localeCompare(a.scheduled_for) || b.id.localeCompare(a.id));
}

/** The last 30 occurrences, oldest to newest left to right, one linked square each. */
export function runStrip(history: RunView[]): string {
  const last = occurrences(history).slice(0, STRIP_LENGTH).reverse();
  if (last.length === 0) return "";
  const squares = last.map((r) => {
    const label = `${r.status} · ${utc(r.scheduled_for)}${r.attempt > 1 ? ` · attempt ${r.attempt}` : ""}`;
    return `<a class="sq ${outcomeKind(r.status)}" href="/ui/runs/${esc(seg(r.id))}" title="${esc(label)}" aria-label="${esc(label)}"></a>`;
  });
  return `<div class="strip" aria-label="last ${last.length} runs">${squares.join("")}</div>`;
}

const CHART_W = 240;
const CHART_H = 56;
const DAY_MS = 86_400_000;

/**
 * Duration and lateness of the last day's runs, drawn here as SVG (no script, no image fetch):
 * x is time over the last 24 h, y is milliseconds from 0 to the largest value shown.
 */
export function durationChart(history: RunView[], now: number): string {
  const points = occurrences(history)
    .filter((r) => now - Date.parse(r.scheduled_for) <= DAY_MS && (r.duration_ms !== null || r.lateness_ms !== null))
    .reverse();
  if (points.length === 0) return "";
  const max = Math.max(1, ...points.flatMap((r) => [r.duration_ms ?? 0, Math.max(0, r.lateness_ms ?? 0)]));
  const left = 4;
  const top = 10;
  const plotH = CHART_H - top - 4;
  const x = (iso: string) => (left + ((Date.parse(iso) - (now - DAY_MS)) / DAY_MS) * (CHART_W - left - 2)).toFixed(1);
  const y = (ms: number) => (top + plotH - (Math.max(0, ms) / max) * plotH).toFixed(1);
  const series = (key: "duration_ms" | "lateness_ms", cls: string) => {
    const pts = points.filter((r) => r[key] !== null).map((r) => [x(r.scheduled_for), y(r[key]!)] as const);
    if (pts.length === 0) return "";
    const line = pts.length > 1 ? `<polyline class="${cls}" stroke-width="1.2" points="${pts.map((p) => p.join(",")).join(" ")}"/>` : "";
    return `${line}${pts.map(([px, py]) => `<circle class="${cls}" cx="${px}" cy="${py}" r="1.6"/>`).join("")}`;
  };
  const title = `duration and lateness of ${points.length} run${points.length === 1 ? "" : "s"} over the last 24 h; top of the chart ${seconds(max)}`;
  return `<svg class="chart" width="${CHART_W}" height="${CHART_H}" viewBox="0 0 ${CHART_W} ${CHART_H}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>
<line class="axis" x1="${left}" y1="${top + plotH}" x2="${CHART_W - 2}" y2="${top + plotH}"/><line class="axis" x1="${left}" y1="${top}" x2="${CHART_W - 2}" y2="${top}" stroke-dasharray="2 3"/>
<text x="${left}" y="8">${esc(seconds(max))}</text>
${series("lateness_ms", "late")}${series("duration_ms", "dur")}</svg><div class="legend"><span class="d">● duration</span> · <span class="l">● lateness</span> · last 24 h to now</div>`;
}

function auditSection(entries: AuditEntry[], now: number): string {
  const rows = entries.map(
    (e) => `<tr>
<td data-label="When">${esc(utc(e.at))}<br><small>${esc(ago(e.at, now))}</small></td>
<td data-label="Who"><strong>${esc(e.actor)}</strong> <small>via ${esc(e.via)}</small></td>
<td data-label="What">${esc(e.action)}${e.job ? ` <strong>${esc(e.job)}</strong>` : ""}${e.run_id ? `<br><small class="mono">${esc(e.run_id)}</small>` : ""}${e.note ? `<br><small>${esc(e.note)}</small>` : ""}</td>
</tr>`,
  );
  return `<section id="audit">
<h2>Changes <small>who did what, newest first</small></h2>
${rows.length ? `<table><thead><tr><th>When</th><th>Who</th><th>What</th></tr></thead><tbody>${rows.join("")}</tbody></table>` : '<p class="muted">No changes recorded yet.</p>'}
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

const RETRYABLE = ["error", "lost", "missed", "skipped"];

function runRow(r: RunView, now: number, open: boolean, ui?: PageUi): string {
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
${may(ui, "operate") ? `<td data-label="Actions">${RETRYABLE.includes(r.status) && r.trigger !== "alert" ? actionForm(ui!, `/ui/runs/${seg(r.id)}/retry`, "Retry") : ""}</td>` : ""}
</tr>`;
}

/**
 * Runs, failures first (error, lost, missed, newest first), then the rest; the newest failure's
 * steps are open, every other run's steps one tap away.
 */
function runsSection(data: StatusData, now: number, ui?: PageUi): string {
  const runs = runsInPageOrder(data);
  const failed = runs.filter((r) => FAILED.includes(r.status)).length;
  const head = may(ui, "operate") ? RUN_HEAD.replace("</tr></thead>", "<th>Actions</th></tr></thead>") : RUN_HEAD;
  return `<section id="runs">
<h2>Runs <small>${esc(`failures first: ${failed} failed, ${runs.length - failed} other`)}</small></h2>
${runs.length ? `<table>${head}<tbody>${runs.map((r, i) => runRow(r, now, i === 0 && failed > 0, ui)).join("")}</tbody></table>` : '<p class="muted">No runs yet.</p>'}
</section>`;
}

function shell(title: string, body: string, refresh = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh ? `<meta http-equiv="refresh" content="${REFRESH_SEC}">\n` : ""}<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Asked once per browser session when api_tokens are configured. */
export function renderLoginPage(input: { error?: string; machineId: string }): string {
  return shell(
    "FleetCron — sign in",
    `<section class="login" id="login">
<h2>FleetCron <small>agent ${esc(input.machineId)}</small></h2>
<p>This page needs a token from the config's <span class="mono">api_tokens</span> (role read, operate or admin).</p>
${input.error ? `<div class="flash bad" role="alert"><p>${esc(input.error)}</p></div>` : ""}
<form method="post" action="/login"><input type="password" name="token" autocomplete="current-password" aria-label="Token" placeholder="token" required><button type="submit" class="primary">Sign in</button></form>
</section>`,
  );
}

/** The admin's editor: a job's JSON, checked by the same validation as `jobs apply` before it is saved. */
export function renderEditorPage(input: { name: string; text: string; exists: boolean; ui: PageUi; problems?: ValidationProblem[] | { path: string; message: string }[] }): string {
  const action = `/ui/jobs/${seg(input.name)}/edit`;
  const problems = input.problems?.length
    ? `<div class="flash bad" role="alert" id="problems"><p>${esc(`${input.problems.length} problem${input.problems.length === 1 ? "" : "s"}; nothing saved`)}</p><ul>${input.problems.map((p) => `<li><span class="mono">${esc(p.path || "(document)")}</span>: ${esc(p.message)}</li>`).join("")}</ul></div>`
    : "";
  return shell(
    `FleetCron — edit ${input.name}`,
    `${flashBlock(input.ui)}
<section id="editor">
<h2>${input.exists ? "Edit" : "New"} job <strong>${esc(input.name)}</strong> <small><a href="/#job-${esc(seg(input.name))}">back</a></small></h2>
${problems}
<form method="post" action="${esc(action)}">
<input type="hidden" name="csrf" value="${esc(input.ui.csrf)}">
<textarea name="document" aria-label="Job document (JSON)" spellcheck="false">${esc(input.text)}</textarea>
<p class="actions"><button type="submit" name="intent" value="check">Check</button><button type="submit" name="intent" value="save" class="primary">Save</button></p>
</form>
</section>`,
  );
}

/** One run record, where a strip's square leads. */
export function renderRunPage(input: { run: RunView; now: number; ui?: PageUi }): string {
  return shell(
    `FleetCron — run ${input.run.id}`,
    `${flashBlock(input.ui)}
<section id="run">
<h2>Run of <strong>${esc(input.run.job)}</strong> <small><a href="/#job-${esc(seg(input.run.job))}">back</a></small></h2>
<p class="mono">${esc(input.run.id)}</p>
<table>${may(input.ui, "operate") ? RUN_HEAD.replace("</tr></thead>", "<th>Actions</th></tr></thead>") : RUN_HEAD}<tbody>${runRow(input.run, input.now, true, input.ui)}</tbody></table>
</section>`,
  );
}
