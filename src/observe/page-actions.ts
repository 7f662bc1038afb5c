import { bearerToken, roleAllows } from "../api/auth.ts";
import * as ops from "../api/operations.ts";
import { ApiError } from "../api/respond.ts";
import type { ApiDeps, RequestInfo } from "../api/router.ts";
import { CLEARED_COOKIE, csrfMatches, sessionCookie, type Flash, type Session, type SessionStore } from "../api/session.ts";
import type { ApiRole } from "../config/schema.ts";
import { maskDocument } from "../control/audit.ts";
import { FleetCronError } from "../core/errors.ts";
import { MASK } from "../core/redact.ts";
import { renderEditorPage, renderLoginPage, renderRunPage, type PageUi } from "./page.ts";
import { runView } from "./status-data.ts";

/**
 * The page's side of the HTTP server: sign-in, and the actions as plain HTML forms. Each action
 * checks the session, its CSRF token and its role, calls the same operation as the API (so the
 * same `src/control/` function as the CLI), keeps the result as a one-time message and redirects
 * back to the page, which shows it. No script is involved anywhere.
 */

export interface UiDeps {
  api: ApiDeps;
  sessions: SessionStore;
  machineId: () => string;
  /** The page's next load gathers the store afresh (an action changed it). */
  invalidate: () => void;
}

const HTML_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-type": "text/html; charset=utf-8",
};
/** Forms post to this origin only; no script, no remote anything. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function html(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...HTML_HEADERS, "content-security-policy": PAGE_CSP, ...headers } });
}

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, { status, headers: { ...HTML_HEADERS, "content-type": "text/plain; charset=utf-8" } });
}

function redirect(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { "cache-control": "no-store", location, ...headers } });
}

/** Who is looking at a page: its view, or the response to send instead (the sign-in form). */
export type Viewer = { ui: PageUi; session: Session | null } | { response: Response };

export async function viewer(deps: UiDeps, req: Request, info: RequestInfo, opts: { loginPage: boolean }): Promise<Viewer> {
  const tokens = deps.api.tokens();
  if (!tokens.configured) return { ui: { user: null, role: null, csrf: null, flash: [] }, session: null };
  const now = deps.api.clock.now();
  const session = deps.sessions.fromRequest(req, now);
  if (session) {
    // The last action's message is said on the next page a person sees, not on a /metrics read.
    const flash = opts.loginPage ? session.flash : [];
    if (opts.loginPage) session.flash = [];
    return { ui: { user: session.name, role: session.role, csrf: session.csrf, flash }, session };
  }
  // A script reading the page or /metrics sends its token instead of signing in (no forms then).
  const presented = bearerToken(req.headers.get("authorization"));
  if (presented !== null) {
    const delay = deps.api.throttle.delayFor(info.address, now);
    if (delay > 0) await deps.api.clock.sleep(delay);
    const principal = tokens.verify(presented);
    if (principal) {
      deps.api.throttle.succeed(info.address);
      return { ui: { user: principal.name, role: principal.role, csrf: null, flash: [] }, session: null };
    }
    deps.api.throttle.fail(info.address, deps.api.clock.now());
  }
  if (opts.loginPage) return { response: html(401, renderLoginPage({ machineId: deps.machineId() })) };
  return { response: text(401, 'a token is needed: send "Authorization: Bearer <token>" (config api_tokens, role read or higher)') };
}

/**
 * A POST from another site (or a page of another agent) never acts, whatever it carries. Under
 * `Referrer-Policy: no-referrer` browsers send `Origin: null` even from this page, so a missing or
 * null origin is left to the CSRF token and the SameSite=Strict cookie.
 */
function crossOrigin(req: Request): boolean {
  const origin = req.headers.get("origin");
  if (!origin || origin === "null") return false;
  try {
    return new URL(origin).host !== (req.headers.get("host") ?? new URL(req.url).host);
  } catch {
    return true;
  }
}

async function formOf(req: Request): Promise<URLSearchParams> {
  const body = await req.text();
  if (body.length > 1 << 20) throw new ApiError(413, "the form is larger than 1 MiB");
  return new URLSearchParams(body);
}

function failureFlash(error: unknown): Flash & { problems?: { path: string; message: string }[] } {
  if (error instanceof ApiError) return { kind: "bad", text: error.message, ...(error.problems ? { problems: error.problems } : {}) };
  if (error instanceof FleetCronError) return { kind: "bad", text: error.message };
  throw error;
}

/** Values the editor showed masked are put back from the stored document, not saved as "***". */
export function restoreMasked(submitted: unknown, stored: unknown): unknown {
  if (submitted === MASK && stored !== undefined) return stored;
  if (Array.isArray(submitted)) return submitted.map((v, i) => restoreMasked(v, Array.isArray(stored) ? stored[i] : undefined));
  if (submitted !== null && typeof submitted === "object") {
    const from = stored !== null && typeof stored === "object" && !Array.isArray(stored) ? (stored as Record<string, unknown>) : {};
    return Object.fromEntries(Object.entries(submitted).map(([k, v]) => [k, restoreMasked(v, from[k])]));
  }
  return submitted;
}

function editableDocument(doc: Record<string, unknown>): Record<string, unknown> {
  const { _id, created_at, updated_at, ...fields } = doc;
  return fields;
}

const JOB_ACTION = /^\/ui\/jobs\/([^/]+)\/(trigger|enable|disable|pause|resume|edit)$/;
const RUN_PATH = /^\/ui\/runs\/([^/]+)(\/retry)?$/;
const NEEDS: Record<string, ApiRole> = { trigger: "operate", enable: "operate", disable: "operate", pause: "operate", resume: "operate", retry: "operate", edit: "admin" };

/** Answers the page's own routes (/login, /logout, /ui/…); null when the path is not one of them. */
export async function handleUi(deps: UiDeps, req: Request, info: RequestInfo): Promise<Response | null> {
  const url = new URL(req.url);
  const path = url.pathname;
  const jobMatch = JOB_ACTION.exec(path);
  const runMatch = RUN_PATH.exec(path);
  if (path !== "/login" && path !== "/logout" && !jobMatch && !runMatch) return null;
  let target: string;
  try {
    target = decodeURIComponent((jobMatch ?? runMatch)?.[1] ?? "");
  } catch {
    return text(400, "the path is not valid percent-encoding");
  }
  const action = jobMatch?.[2] ?? (runMatch?.[2] ? "retry" : runMatch ? "view" : path.slice(1));
  const now = deps.api.clock.now();

  // Pages (GET): a run, or the editor.
  if (req.method === "GET" || req.method === "HEAD") {
    if (action !== "view" && action !== "edit") return text(405, `${path} takes POST from the page's forms`);
    const seen = await viewer(deps, req, info, { loginPage: true });
    if ("response" in seen) return seen.response;
    if (action === "view") {
      const run = await deps.api.store.getRun(target);
      if (!run) return text(404, `no run with id ${JSON.stringify(target)}`);
      return html(200, renderRunPage({ run: runView({ ...ops.publicRun(run, deps.api.settings().redact) }), now, ui: seen.ui }));
    }
    if (!seen.session || !roleAllows(seen.session.role, "admin")) return text(403, `editing a job needs a page sign-in with a token of role admin${seen.ui.role ? ` (this one is ${seen.ui.role})` : ""}`);
    const doc = await deps.api.store.findJobByName(target);
    const shown = doc ? maskDocument(editableDocument(doc), deps.api.settings().redact) : { name: target, every: "1h", url: "https://example.com/" };
    return html(200, renderEditorPage({ name: target, text: JSON.stringify(shown, null, 2), exists: doc !== null, ui: seen.ui }));
  }
  if (req.method !== "POST") return text(405, `${path} takes POST`);

  if (path === "/login") {
    const tokens = deps.api.tokens();
    if (!tokens.configured) return redirect("/");
    const delay = deps.api.throttle.delayFor(info.address, now);
    if (delay > 0) await deps.api.clock.sleep(delay);
    const token = (await formOf(req)).get("token") ?? "";
    const principal = tokens.verify(token);
    if (!principal) {
      deps.api.throttle.fail(info.address, deps.api.clock.now());
      deps.api.log.warn(`page: a wrong token from ${info.address}`);
      return html(401, renderLoginPage({ machineId: deps.machineId(), error: "That token is not one of api_tokens." }));
    }
    deps.api.throttle.succeed(info.address);
    const session = deps.sessions.create(principal.name, principal.role, now);
    session.flash.push({ kind: "info", text: `Signed in as ${principal.name} (${principal.role}).` });
    return redirect("/", { "set-cookie": sessionCookie(session) });
  }

  if (crossOrigin(req)) return text(403, "refused: the form was posted from another origin");
  const session = deps.sessions.fromRequest(req, now);
  if (!session) return text(401, "sign in first: open / and enter a token");
  const form = await formOf(req);
  if (!csrfMatches(session, form.get("csrf"))) return text(403, "refused: the form's CSRF token is missing or wrong; reload the page and try again");

  if (path === "/logout") {
    deps.sessions.end(session);
    return redirect("/", { "set-cookie": CLEARED_COOKIE });
  }
  const need = NEEDS[action]!;
  if (!roleAllows(session.role, need)) return text(403, `token "${session.name}" has role ${session.role}; ${action} needs role ${need}`);
  const caller: ops.Caller = { name: session.name, role: session.role, via: "page" };
  const back = runMatch ? "/#runs" : `/#job-${encodeURIComponent(target)}`;

  if (action === "edit") return saveFromEditor(deps, session, caller, target, form);
  try {
    session.flash.push(await perform(deps, caller, action, target, form));
  } catch (error) {
    session.flash.push(failureFlash(error));
  }
  deps.invalidate();
  return redirect(back);
}

async function perform(deps: UiDeps, caller: ops.Caller, action: string, target: string, form: URLSearchParams): Promise<Flash> {
  const api = deps.api;
  switch (action) {
    case "trigger": {
      // The page waits a little for the result, so the message can say how the run went.
      const { done, run } = await ops.triggerByName(api, caller, target, 5000);
      const took = typeof run.duration_ms === "number" ? ` in ${run.duration_ms} ms` : "";
      return { kind: !done ? "info" : run.status === "success" ? "good" : "bad", text: `Run now "${target}": ${done ? `${run.status}${took}` : "started, still running"} (run ${run._id})${run.error ? `: ${run.error}` : ""}` };
    }
    case "enable":
    case "disable": {
      const { changed } = await ops.toggleJob(api, caller, target, action === "enable");
      return { kind: "good", text: `"${target}" ${changed ? `${action}d` : `was already ${action}d`}.` };
    }
    case "pause": {
      const note = form.get("note")?.trim() || undefined;
      const until = form.get("until")?.trim() || undefined;
      await ops.pauseJob(api, caller, target, { ...(note ? { note } : {}), ...(until ? { until } : {}) });
      return { kind: "good", text: `"${target}" paused${until ? ` until ${until}` : ""}${note ? `: ${note}` : ""}.` };
    }
    case "resume":
      await ops.resumeJob(api, caller, target);
      return { kind: "good", text: `"${target}" resumed.` };
    case "retry": {
      const result = (await ops.retryRun(api, caller, target)) as { attempt?: number; outcome?: { _id?: string; status?: string } } | null;
      const outcome = result?.outcome;
      return {
        kind: outcome?.status === "success" ? "good" : "bad",
        text: `Retry of run ${target}: ${outcome?._id ? `attempt ${result?.attempt ?? "?"} ${outcome.status ?? ""} (${outcome._id})`.trim() : "started"}.`,
      };
    }
    default:
      throw new ApiError(404, `no such action ${action}`);
  }
}

async function saveFromEditor(deps: UiDeps, session: Session, caller: ops.Caller, name: string, form: URLSearchParams): Promise<Response> {
  const text = form.get("document") ?? "";
  const intent = form.get("intent") === "save" ? "save" : "check";
  const ui: PageUi = { user: session.name, role: session.role, csrf: session.csrf, flash: [] };
  let submitted: unknown;
  try {
    submitted = JSON.parse(text);
  } catch (error) {
    return html(422, renderEditorPage({ name, text, exists: true, ui, problems: [{ path: "", message: `is not JSON: ${(error as Error).message}` }] }));
  }
  const stored = await deps.api.store.findJobByName(name);
  const doc = stored ? restoreMasked(submitted, editableDocument(stored)) : submitted;
  try {
    if (intent === "check") {
      ops.checkJobDocument(deps.api, name, doc);
      ui.flash.push({ kind: "good", text: "Valid: nothing saved yet." });
      return html(200, renderEditorPage({ name, text, exists: stored !== null, ui }));
    }
    const { body } = await ops.putJob(deps.api, caller, name, doc);
    session.flash.push({ kind: "good", text: `"${name}" ${body.change}.` });
    deps.invalidate();
    return redirect(`/#job-${encodeURIComponent(name)}`);
  } catch (error) {
    const flash = failureFlash(error);
    return html(422, renderEditorPage({ name, text, exists: stored !== null, ui, problems: flash.problems ?? [{ path: "", message: flash.text }] }));
  }
}
