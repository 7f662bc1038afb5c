/**
 * Strict parsing over citty: citty ignores flags it does not know and extra words, so a typo
 * (`runs --limt 5`, `--hlep`) would run something else than what was asked — or start an agent.
 * Before citty sees the line, `resolveInvocation` walks the command tree to the command named and
 * checks every flag and positional against that command's own `args`, so any citty command (new
 * ones included) is strict without doing anything itself. Bad usage exits 2 with a suggestion and
 * the usage of the command concerned (README, "Commands").
 */
import type { ArgDef, ArgsDef, CommandDef } from "citty";
import { UsageError } from "../core/errors.ts";
import { nearest } from "../core/nearest.ts";
import { globalArgs } from "./_globals.ts";

// citty types a command by its args; the tree holds commands of every shape.
type AnyCommand = CommandDef<any>;

const resolve = async <T>(value: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> =>
  typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;

export interface Invocation {
  cmd: AnyCommand;
  /** Command names from the root: ["fleetcron", "jobs", "list"]. */
  path: string[];
  /** What the command itself gets (after its name). */
  args: string[];
}

/** A usage error that knows whose usage to print after it. */
export class StrictUsageError extends UsageError {
  constructor(
    message: string,
    readonly invocation: { cmd: AnyCommand; path: string[] },
  ) {
    super(message);
  }
}

export async function commandName(cmd: AnyCommand): Promise<string> {
  return (await resolve(cmd.meta))?.name ?? "";
}

export async function subCommandsOf(cmd: AnyCommand): Promise<Record<string, AnyCommand>> {
  const subs = (await resolve(cmd.subCommands)) as Record<string, unknown> | undefined;
  if (!subs) return {};
  const out: Record<string, AnyCommand> = {};
  for (const [name, value] of Object.entries(subs)) out[name] = (await resolve(value as AnyCommand)) as AnyCommand;
  return out;
}

function subNames(cmd: AnyCommand): string[] {
  const subs = cmd.subCommands;
  return subs && typeof subs === "object" && !(subs instanceof Promise) ? Object.keys(subs) : [];
}

async function subNamesOf(cmd: AnyCommand): Promise<string[]> {
  const subs = (await resolve(cmd.subCommands)) as Record<string, unknown> | undefined;
  return subs ? Object.keys(subs) : subNames(cmd);
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface FlagSpec {
  key: string;
  def: ArgDef;
}

/** Every spelling a command accepts for its flags: name, kebab-case, aliases, `--no-x` for booleans. */
function flagTable(args: ArgsDef): Map<string, FlagSpec & { negated: boolean }> {
  const table = new Map<string, FlagSpec & { negated: boolean }>();
  for (const [key, def] of Object.entries({ ...args, ...globalArgs } as ArgsDef)) {
    if (def.type === "positional") continue;
    const names = [key, kebab(key), ...aliasesOf(def)];
    for (const name of names) table.set(name, { key, def, negated: false });
    if (def.type === "boolean") table.set(`no-${kebab(key)}`, { key, def, negated: true });
  }
  return table;
}

function positionalsOf(args: ArgsDef): { key: string; def: ArgDef }[] {
  return Object.entries(args)
    .filter(([, def]) => def.type === "positional")
    .map(([key, def]) => ({ key, def }));
}

export function aliasesOf(def: ArgDef): string[] {
  const alias = (def as { alias?: string | string[] }).alias;
  return alias ? (Array.isArray(alias) ? alias : [alias]) : [];
}

const dash = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * Walks `argv` down the command tree and checks the arguments of the command reached. Throws a
 * StrictUsageError for an unknown command, flag or extra argument, a flag without its value, or a
 * missing required argument.
 */
export async function resolveInvocation(root: AnyCommand, argv: string[]): Promise<Invocation> {
  let cmd = root;
  const path = [await commandName(root)];
  let rest = argv;
  for (;;) {
    const names = await subNamesOf(cmd);
    if (names.length === 0) break;
    const at = firstWord(rest, flagTable((await resolve(cmd.args)) ?? {}));
    const word = at === -1 || rest[at] === "--" ? undefined : rest[at]!;
    if (word !== undefined && names.includes(word)) {
      // Flags before a subcommand's name would reach neither command (citty runs the subcommand
      // with what follows its name): only the global flags, already taken out, may stand there.
      const sub = (await subCommandsOf(cmd))[word]!;
      checkArgs({}, rest.slice(0, at), { cmd: sub, path: [...path, word] });
      cmd = sub;
      path.push(word);
      rest = rest.slice(at + 1);
      continue;
    }
    if (cmd.run && word !== undefined && positionalsOf((await resolve(cmd.args)) ?? {}).length > 0) break; // a positional of this command
    if (word !== undefined && !cmd.run) {
      const guess = nearest(word, names);
      throw new StrictUsageError(`unknown command "${word}"${guess.length ? `; did you mean \`${[...path, guess[0]].join(" ")}\`?` : ""}`, { cmd, path });
    }
    if (word === undefined && !cmd.run) {
      const fallback = await resolve(cmd.default as string | undefined);
      if (!fallback) throw new StrictUsageError(`\`${path.join(" ")}\` needs a command: ${names.join(", ")}`, { cmd, path });
      // Only a bare `fleetcron` starts the agent: a flag meant for nothing else is not a request to run.
      checkArgs((await resolve(cmd.args)) ?? {}, rest, { cmd, path });
      cmd = (await subCommandsOf(cmd))[fallback]!;
      path.push(fallback);
      break;
    }
    break;
  }
  checkArgs((await resolve(cmd.args)) ?? {}, rest, { cmd, path });
  return { cmd, path, args: rest };
}

/** Index of the first word that is not a flag or a flag's value (a subcommand name, or a positional). */
function firstWord(argv: string[], flags: ReturnType<typeof flagTable>): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--" || !arg.startsWith("-")) return i;
    const spec = flags.get(arg.replace(/^--?/, ""));
    if (spec && spec.def.type !== "boolean") i++;
  }
  return -1;
}

function checkArgs(args: ArgsDef, argv: string[], where: { cmd: AnyCommand; path: string[] }): void {
  const flags = flagTable(args);
  const positionals = positionalsOf(args);
  const fail = (message: string) => new StrictUsageError(message, where);
  const given: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      given.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      given.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = flags.get(name);
    if (!spec) {
      // --help and --version are taken before parsing, wherever they stand; they are still near misses.
      const known = [...new Set([...flags.entries()].filter(([n, s]) => !s.negated && n.length > 1).map(([n]) => n)), "help", "version"];
      const guess = nearest(name, known);
      throw fail(`unknown option ${dash(name)}${guess.length ? `; did you mean --${guess[0]}?` : ""}`);
    }
    if (spec.def.type === "boolean") {
      if (eq !== -1 && !["true", "false"].includes(body.slice(eq + 1))) throw fail(`${dash(name)} takes no value (got "${body.slice(eq + 1)}")`);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = body.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith("-") && !/^-\d/.test(value))) throw fail(`${dash(name)} needs a value${spec.def.valueHint ? ` (${spec.def.valueHint})` : ""}`);
      i++;
    }
    if (spec.def.type === "enum" && spec.def.options && !spec.def.options.includes(value)) {
      throw fail(`${dash(name)} must be one of ${spec.def.options.join(", ")} (got "${value}")`);
    }
  }
  if (given.length > positionals.length) {
    const extra = given[positionals.length]!;
    const subs = subNames(where.cmd);
    const guess = nearest(extra, subs);
    const what = positionals.length === 0 ? `\`${where.path.join(" ")}\` takes no arguments` : `\`${where.path.join(" ")}\` takes ${positionals.length} argument${positionals.length > 1 ? "s" : ""}`;
    throw fail(`unexpected argument "${extra}": ${what}${guess.length ? `; did you mean \`${[...where.path, guess[0]].join(" ")}\`?` : given.length > 1 && positionals.length === 1 ? " (quote a name that has spaces)" : ""}`);
  }
  const missing = positionals.slice(given.length).find((p) => p.def.required !== false && p.def.default === undefined);
  if (missing) throw fail(`missing argument ${missing.key.toUpperCase()}${missing.def.description ? `: ${missing.def.description}` : ""}`);
}
