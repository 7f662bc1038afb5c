/**
 * Reads a jobs file (`jobs apply`, `jobs validate`, config `jobs_file`): a JSON array of job
 * documents, or `{ "jobs": [...] }` so the file can grow other top-level keys later. A file that
 * cannot be read is bad usage (exit 2); a file that reads but is not a list of jobs fails the
 * command (exit 1), like any other validation problem.
 */
import { readFileSync } from "node:fs";
import { describeValue, isPlainObject } from "../config/issues.ts";
import { describeJsonError, parseJson } from "../config/json.ts";
import { EXIT_FAILED, EXIT_USAGE, FleetCronError } from "../core/errors.ts";

export function readJobsFile(path: string): { docs: unknown[] } {
  const parsed = parseJson(readText(path));
  if (!parsed.ok) throw new FleetCronError("E_JOBS_INVALID", describeJsonError(path, parsed), EXIT_FAILED);
  return { docs: jobsIn(parsed.value, path) };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "it does not exist" : code === "EISDIR" ? "it is a folder" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new FleetCronError("E_JOBS_FILE", `cannot read jobs file ${path}: ${why}`, EXIT_USAGE);
  }
}

const SHAPE = 'must be a JSON array of jobs, or an object { "jobs": [...] }';

function jobsIn(value: unknown, path: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (isPlainObject(value) && Array.isArray(value.jobs)) {
    const extra = Object.keys(value).filter((key) => key !== "jobs");
    if (extra.length) throw invalid(`${path}: unknown top-level key${extra.length > 1 ? "s" : ""} ${extra.map((k) => `"${k}"`).join(", ")}; the file ${SHAPE}`);
    return value.jobs;
  }
  if (isPlainObject(value) && "jobs" in value) throw invalid(`${path}: "jobs" must be an array of job documents (got ${describeValue(value.jobs)})`);
  throw invalid(`${path}: ${SHAPE} (got ${describeValue(value)})`);
}

function invalid(message: string): FleetCronError {
  return new FleetCronError("E_JOBS_INVALID", message, EXIT_FAILED);
}
