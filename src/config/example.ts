/**
 * What `fleetcron config init` writes: the smallest config that runs on the embedded store, with
 * the seed's secrets so its example jobs validate as they are. `config/fleetcron.config.example.json`
 * is this object with `tz: "UTC"` and `jobs_file` pointing at the example jobs next to it.
 */
import { hostTimeZone } from "./load.ts";

export interface ExampleOptions {
  /** Defaults to the host's zone, so "9 AM" means what the person running `config init` expects. */
  tz?: string;
  /** Left out by default: a jobs file that does not exist yet would stop the agent. */
  jobsFile?: string;
}

export function exampleConfig(options: ExampleOptions = {}): Record<string, unknown> {
  return {
    // No mongodb_uri: the embedded store. Add "mongodb_uri" (and "db_name") to join a fleet.
    tz: options.tz ?? hostTimeZone(),
    max_serial: 10,
    secrets: {
      BASE_URL: "http://127.0.0.1:8080",
      API_SECRET: "change-me",
    },
    ...(options.jobsFile ? { jobs_file: options.jobsFile } : {}),
  };
}
