#!/usr/bin/env bun
import { renderUsage, runCommand } from "citty";
import { main } from "./cli/index.ts";
import { extractGlobalFlags, globalFlags } from "./cli/_globals.ts";
import { flushOutput, writeErr, writeOut } from "./cli/_output.ts";
import { EXIT_FAILED, EXIT_USAGE, FleetCronError } from "./core/errors.ts";
import { terminalSafe } from "./core/printable.ts";
import { versionLine } from "./version.ts";

const CITTY_USAGE_CODES = new Set(["EARG", "E_UNKNOWN_COMMAND", "E_NO_COMMAND"]);

async function resolveCommandFor(argv: string[]) {
  // Walk the subcommand names given, to show the usage of the deepest one that exists.
  let cmd: any = main;
  for (const word of argv) {
    if (word.startsWith("-")) break;
    const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : cmd.subCommands;
    const next = subs?.[word];
    if (!next) break;
    cmd = typeof next === "function" ? await next() : next;
  }
  return cmd;
}

async function cli(argv: string[]): Promise<number> {
  try {
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      writeOut(`${versionLine()}\n`);
      return 0;
    }
    const { flags, rest } = extractGlobalFlags(argv);
    Object.assign(globalFlags, flags);
    if (rest.includes("--help") || rest.includes("-h")) {
      const cmd = await resolveCommandFor(rest.filter((a) => a !== "--help" && a !== "-h"));
      writeOut(`${await renderUsage(cmd)}\n`);
      return 0;
    }
    await runCommand(main, { rawArgs: rest });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof FleetCronError) {
      writeErr(`error: ${terminalSafe(error.message)}\n`);
      return error.exitCode;
    }
    if (code && CITTY_USAGE_CODES.has(code)) {
      writeErr(`${await renderUsage(await resolveCommandFor(argv))}\n\nerror: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    writeErr(`error: ${terminalSafe((error as Error)?.stack ?? String(error))}\n`);
    return EXIT_FAILED;
  }
}

const exitCode = await cli(process.argv.slice(2));
await flushOutput();
process.exit(exitCode);
