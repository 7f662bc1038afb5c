import { readJobsFile } from "../jobs/file.ts";
import { formatProblems, validateJobDocs } from "../jobs/validate.ts";
import type { ValidationProblem } from "../jobs/types.ts";
import type { SecretScope } from "../executor/secret-hosts.ts";

export interface JobsFileReport {
  file: string;
  jobs: { name: string; doc: Record<string, unknown> }[];
  problems: ValidationProblem[];
  /** Every problem, one line each, naming the file, the job and the field. */
  text: string;
}

/** Reads and validates a jobs file as a whole: `jobs apply` writes nothing unless every job is valid. */
export function checkJobsFile(file: string, secretKeys: string[], secretScope?: SecretScope): JobsFileReport {
  const { docs } = readJobsFile(file);
  const { jobs, problems } = validateJobDocs(docs, { secretKeys, strictKeys: true, ...(secretScope ? { secretScope } : {}) });
  return { file, jobs: jobs.map((j) => ({ name: j.name, doc: j.doc as Record<string, unknown> })), problems, text: problems.length ? formatProblems(problems, file) : "" };
}
