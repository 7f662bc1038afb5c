import { FleetCronError } from "../core/errors.ts";

/** The API's error body: `{ error, problems? }` (README, "HTTP API"). */
export interface ApiProblem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems?: ApiProblem[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const API_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-type": "application/json; charset=utf-8",
};

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(`${JSON.stringify(body, null, 2)}\n`, { status, headers: { ...API_HEADERS, ...headers } });
}

/** What an error becomes on the wire: the control layer's codes mapped to HTTP statuses. */
export function errorResponse(error: unknown): Response {
  if (error instanceof ApiError) {
    return json(error.status, { error: error.message, ...(error.problems ? { problems: error.problems } : {}) }, error.headers);
  }
  if (error instanceof FleetCronError) return json(statusOfCode(error.code), { error: error.message, code: error.code });
  throw error;
}

function statusOfCode(code: string): number {
  switch (code) {
    case "E_NO_JOB":
    case "E_NO_RUN":
      return 404;
    case "E_INVALID_JOB":
    case "E_INVALID_JOBS":
      return 422;
    case "E_USAGE":
      return 400;
    case "E_NOT_AVAILABLE":
      return 501;
    case "E_STORE":
      return 503;
    default:
      // A refusal with a reason (a run that cannot be retried, a job that cannot run): the request
      // was understood, the state does not allow it.
      return 409;
  }
}
