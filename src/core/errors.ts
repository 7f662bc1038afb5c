/** Exit codes of the CLI contract (README, "Commands"). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * Every error the user may see carries a stable code and the exit code it maps to, so `main.ts`
 * can print the message alone (it already says what is wrong and what would be valid).
 */
export class FleetCronError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = "FleetCronError";
  }
}

/** Bad config file or bad command-line usage: exit 2. */
export class ConfigError extends FleetCronError {
  constructor(message: string, code = "E_CONFIG") {
    super(code, message, EXIT_USAGE);
    this.name = "ConfigError";
  }
}

export class UsageError extends FleetCronError {
  constructor(message: string) {
    super("E_USAGE", message, EXIT_USAGE);
    this.name = "UsageError";
  }
}

/** The store could not be reached or answered with an error that is not a lost race. */
export class StoreError extends FleetCronError {
  constructor(message: string, override readonly cause?: unknown) {
    super("E_STORE", message, EXIT_FAILED);
    this.name = "StoreError";
  }
}
