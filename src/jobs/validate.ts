/**
 * Validates a whole set of job documents (a jobs file, or the store's collection) and words the
 * problems for people: one line per problem, naming the file, the job and the field.
 */
import { isPlainObject } from "../config/issues.ts";
import { printable } from "../core/printable.ts";
import type { JobDocument } from "../store/types.ts";
import type { SecretScope } from "../executor/secret-hosts.ts";
import { parseJobDocument } from "./schema.ts";
import type { InvalidJob, Job, ValidationProblem } from "./types.ts";

export interface ValidatedJob {
  name: string;
  /** The document as written (no defaults filled in, unknown keys kept) minus `_id`, which the store owns. */
  doc: Record<string, unknown>;
  job: Job;
}

export interface JobsValidation {
  /** Documents without problems, in file order; a repeated name keeps only its first job. */
  jobs: ValidatedJob[];
  /** Each with `index`: the job's position in the file, counted from 1. */
  problems: (ValidationProblem & { index: number })[];
  /** Valid but probably not what was meant; nothing stops the job from being applied. */
  warnings: (ValidationProblem & { index: number })[];
}

export interface JobsContext {
  secretKeys: readonly string[];
  /** With it, a job that would send a secret to a host its `hosts` exclude is refused. */
  secretScope?: SecretScope;
  /** Unknown keys are problems unless turned off; files are where typos get written. Default true. */
  strictKeys?: boolean;
}

/**
 * Jobs in a file, labelled `#<n>` when a document has no usable name: its position counted from 1
 * (the 3rd job is `#3`), as people count, not as `jobs[2]`.
 */
export function validateJobDocs(docs: readonly unknown[], ctx: JobsContext): JobsValidation {
  const jobs: ValidatedJob[] = [];
  const problems: JobsValidation["problems"] = [];
  const warnings: JobsValidation["warnings"] = [];
  const firstIndex = new Map<string, number>();
  docs.forEach((doc, i) => {
    const index = i + 1;
    const result = parseJobDocument(doc, { secretKeys: ctx.secretKeys, strictKeys: ctx.strictKeys ?? true, label: `#${index}`, ...(ctx.secretScope ? { secretScope: ctx.secretScope } : {}) });
    const name = isPlainObject(doc) && typeof doc.name === "string" ? doc.name : undefined;
    const duplicateOf = name === undefined ? undefined : firstIndex.get(name);
    if (name !== undefined && duplicateOf === undefined) firstIndex.set(name, index);
    if (name !== undefined && duplicateOf !== undefined) {
      problems.push({ index, job: name, path: "name", message: `is also the name of job #${duplicateOf}; job names must be unique (jobs apply matches jobs by name)` });
    }
    if (!result.ok) problems.push(...result.problems.map((p) => ({ ...p, index })));
    else {
      warnings.push(...jobWarnings(result.job).map((w) => ({ ...w, index })));
      if (duplicateOf === undefined) jobs.push({ name: result.job.name, doc: withoutId(doc as Record<string, unknown>), job: result.job });
    }
  });
  return { jobs, problems, warnings };
}

/** Settings that are valid but do nothing as written. */
function jobWarnings(job: Job): ValidationProblem[] {
  const out: ValidationProblem[] = [];
  if (job.alert_after_sec && job.on_failure.length === 0) {
    out.push({ job: job.name, path: "alert_after_sec", message: "is set but the job has no on_failure steps, so no alert is ever sent; add on_failure (the alert's requests) or remove alert_after_sec" });
  }
  return out;
}

function withoutId(doc: Record<string, unknown>): Record<string, unknown> {
  const { _id, ...rest } = doc;
  return rest;
}

/**
 * Documents read from the store: unknown keys are tolerated (hand-written seed databases carry
 * extras), and an invalid document is set aside with its problems so every other job keeps running.
 */
export function parseStoredJobs(docs: readonly JobDocument[], secretKeys: readonly string[]): { jobs: Job[]; invalid: InvalidJob[] } {
  const jobs: Job[] = [];
  const invalid: InvalidJob[] = [];
  for (const doc of docs) {
    const id = String(doc._id);
    const result = parseJobDocument(doc, { secretKeys, id, label: id, strictKeys: false });
    if (result.ok) jobs.push(result.job);
    else invalid.push({ id, name: typeof doc.name === "string" ? printable(doc.name) : id, problems: result.problems });
  }
  return { jobs, invalid };
}

/**
 * `FILE:12: job "Daily Report" › actions[1].url: unknown template name {{BASE}} …`, one line per
 * problem; the line number (where known) is where the field, or else the job, starts in the file.
 */
export function formatProblems(problems: readonly (ValidationProblem & { line?: number })[], file?: string): string {
  return problems.map((p) => formatProblem(p, file)).join("\n");
}

export function formatProblem(problem: ValidationProblem & { line?: number }, file?: string): string {
  const job = problem.job.startsWith("#") ? `job ${problem.job}` : `job ${JSON.stringify(problem.job)}`;
  const where = problem.path ? `${job} › ${problem.path}` : job;
  return `${file ? `${file}${problem.line ? `:${problem.line}` : ""}: ` : ""}${where}: ${problem.message}`;
}
