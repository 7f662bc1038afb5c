import { readFileSync } from "node:fs";
import { readJobsFile } from "../jobs/file.ts";
import { formatProblems, validateJobDocs } from "../jobs/validate.ts";
import type { ValidationProblem } from "../jobs/types.ts";
import type { SecretScope } from "../executor/secret-hosts.ts";

/** A problem as reported for a file: the job's position from 1, and the line it points at. */
export type FileProblem = ValidationProblem & { index: number; line?: number };

export interface JobsFileReport {
  file: string;
  jobs: { name: string; doc: Record<string, unknown> }[];
  problems: FileProblem[];
  warnings: FileProblem[];
  /** Every problem, one line each, naming the file and line, the job and the field. */
  text: string;
  /** Every warning, worded the same way (`FILE:LINE: job … › field: …`). */
  warningText: string[];
}

/** Reads and validates a jobs file as a whole: `jobs apply` writes nothing unless every job is valid. */
export function checkJobsFile(file: string, secretKeys: string[], secretScope?: SecretScope): JobsFileReport {
  const { docs } = readJobsFile(file);
  const { jobs, problems, warnings } = validateJobDocs(docs, { secretKeys, strictKeys: true, ...(secretScope ? { secretScope } : {}) });
  const lines = jobLines(readFileSync(file, "utf8"));
  const located = (p: ValidationProblem & { index: number }): FileProblem => {
    const at = lines[p.index - 1];
    const key = p.path.split(/[.[]/)[0] ?? "";
    const line = at ? (at.keys.get(key) ?? at.start) : undefined;
    return line === undefined ? p : { ...p, line };
  };
  const withLines = problems.map(located);
  const warned = warnings.map(located);
  return {
    file,
    jobs: jobs.map((j) => ({ name: j.name, doc: j.doc as Record<string, unknown> })),
    problems: withLines,
    warnings: warned,
    text: withLines.length ? formatProblems(withLines, file) : "",
    warningText: warned.map((w) => formatProblems([w], file)),
  };
}

/**
 * Where each job of a jobs file starts (1-based line) and where its top-level keys are, found by
 * scanning the JSON text the parser has already accepted: the jobs are the elements of the
 * top-level array, or of the array under the top-level "jobs" key.
 */
export function jobLines(text: string): { start: number; keys: Map<string, number> }[] {
  const out: { start: number; keys: Map<string, number> }[] = [];
  const stack: ("{" | "[")[] = [];
  let line = 1;
  let jobsDepth = -1; // depth of the jobs array once found
  let lastString: { text: string; line: number } | null = null;
  let topKey: string | null = null;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\n") {
      line++;
      continue;
    }
    if (ch === " " || ch === "\t" || ch === "\r") continue;
    const depth = stack.length;
    // A value starting directly inside the jobs array is a job.
    if (jobsDepth !== -1 && depth === jobsDepth && stack[depth - 1] === "[" && ch !== "," && ch !== "]") {
      out.push({ start: line, keys: new Map() });
    }
    if (ch === '"') {
      let j = i + 1;
      let value = "";
      while (j < text.length && text[j] !== '"') {
        if (text[j] === "\\") j++;
        value += text[j];
        j++;
      }
      lastString = { text: value, line };
      i = j;
      continue;
    }
    if (ch === ":") {
      if (lastString) {
        if (depth === 1 && stack[0] === "{") topKey = lastString.text;
        if (jobsDepth !== -1 && depth === jobsDepth + 1 && stack[depth - 1] === "{" && out.length) {
          const keys = out[out.length - 1]!.keys;
          if (!keys.has(lastString.text)) keys.set(lastString.text, lastString.line);
        }
      }
      expectValue = true;
      continue;
    }
    lastString = null;
    if (ch === "{" || ch === "[") {
      stack.push(ch);
      if (jobsDepth === -1 && ch === "[" && (stack.length === 1 || (stack.length === 2 && stack[0] === "{" && topKey === "jobs" && expectValue))) jobsDepth = stack.length;
    } else if (ch === "}" || ch === "]") {
      stack.pop();
    }
    expectValue = false;
  }
  return out;
}
