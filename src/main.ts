#!/usr/bin/env bun
import { runCommand } from "citty";
import { main } from "./cli/index.ts";
import { extractGlobalFlags, globalFlags, invocation as current } from "./cli/_globals.ts";
import { flushOutput, writeErr, writeOut } from "./cli/_output.ts";
import { commandName, resolveInvocation, StrictUsageError, subCommandsOf } from "./cli/_strict.ts";
import { colourFor, renderUsage, renderUsageError } from "./cli/_usage.ts";
import { EXIT_FAILED, EXIT_USAGE, FleetCronError } from "./core/errors.ts";
import { terminalSafe } from "./core/printable.ts";
import { versionLine } from "./version.ts";

const CITTY_USAGE_CODES = new Set(["EARG", "E_UNKNOWN_COMMAND", "E_NO_COMMAND"]);
const VERSION_FLAGS = new Set(["--version", "-V", "-v"]);
const HELP_FLAGS = new Set(["--help", "-h"]);

/** The words before `--`: where `--version` and `--help` count, wherever they stand. */
function flagsPart(argv: string[]): string[] {
  const end = argv.indexOf("--");
  return end === -1 ? argv : argv.slice(0, end);
}

/** For --help: the deepest command the words name, ignoring anything else on the line. */
async function commandForHelp(argv: string[]) {
  let cmd = main;
  const path = [await commandName(main)];
  for (const word of argv) {
    if (word.startsWith("-")) continue;
    const next = (await subCommandsOf(cmd))[word];
    if (!next) break;
    cmd = next;
    path.push(word);
  }
  return { cmd, path };
}

/** With --json a failure is a JSON document on stdout too, so a script can read why. */
function reportJsonError(error: FleetCronError): void {
  if (!globalFlags.json) return;
  const details = (error as { details?: Record<string, unknown> }).details;
  writeOut(`${JSON.stringify({ error: { code: error.code, message: error.message, exit_code: error.exitCode, ...details } }, null, 2)}\n`);
}

async function cli(argv: string[]): Promise<number> {
  const before = flagsPart(argv);
  if (before.some((a) => VERSION_FLAGS.has(a))) {
    if (before.includes("--json")) writeOut(`${JSON.stringify({ version: versionLine() })}\n`);
    else writeOut(`${versionLine()}\n`);
    return 0;
  }
  try {
    const { flags, rest } = extractGlobalFlags(argv);
    Object.assign(globalFlags, flags);
    if (flagsPart(rest).some((a) => HELP_FLAGS.has(a))) {
      writeOut(`${await renderUsage(await commandForHelp(flagsPart(rest)), colourFor(process.stdout))}\n`);
      return 0;
    }
    const invocation = await resolveInvocation(main, rest);
    current.path = invocation.path;
    await runCommand(invocation.cmd, { rawArgs: invocation.args });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof StrictUsageError) {
      reportJsonError(error);
      writeErr(`${await renderUsageError(error.message, error.invocation, colourFor(process.stderr))}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof FleetCronError) {
      reportJsonError(error);
      writeErr(`error: ${terminalSafe(error.message)}\n`);
      return error.exitCode;
    }
    if (code && CITTY_USAGE_CODES.has(code)) {
      reportJsonError(new FleetCronError("E_USAGE", (error as Error).message, EXIT_USAGE));
      writeErr(`error: ${(error as Error).message}\n\n${await renderUsage(await commandForHelp(argv), colourFor(process.stderr))}\n`);
      return EXIT_USAGE;
    }
    reportJsonError(new FleetCronError("E_INTERNAL", (error as Error)?.message ?? String(error), EXIT_FAILED));
    writeErr(`error: ${terminalSafe((error as Error)?.stack ?? String(error))}\n`);
    return EXIT_FAILED;
  }
}

const exitCode = await cli(process.argv.slice(2));
await flushOutput();
process.exit(exitCode);
