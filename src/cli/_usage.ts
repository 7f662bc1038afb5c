/**
 * `--help` and the usage printed after a usage error. citty's own renderer names a nested command
 * with its parent only (`jobs list`, not `fleetcron jobs list`) and colours even into a pipe, so
 * the CLI renders usage itself from the same `meta` and `args` citty reads.
 */
import type { ArgDef, ArgsDef } from "citty";
import { globalArgs } from "./_globals.ts";
import { aliasesOf, subCommandsOf, type Invocation } from "./_strict.ts";

type Where = Pick<Invocation, "cmd" | "path">;

/** Colour only for a terminal, and never with NO_COLOR set (https://no-color.org). */
export function colourFor(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

function paint(on: boolean) {
  const wrap = (code: string) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { bold: wrap("1"), cyan: wrap("36"), dim: wrap("2"), red: wrap("31") };
}

const HELP_FLAGS: ArgsDef = {
  help: { type: "boolean", alias: ["h"], description: "Show this help" },
  version: { type: "boolean", alias: ["V", "v"], description: "Show the version (anywhere on the line)" },
};

function flagLabel(key: string, def: ArgDef): string {
  const aliases = aliasesOf(def);
  const names = [`--${key}`, ...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`))].join(", ");
  if (def.type === "boolean") return names;
  const hint = def.type === "enum" && def.options ? def.options.join("|") : (def.valueHint ?? key).toUpperCase();
  return `${names} ${hint}`;
}

export async function renderUsage(where: Where, colour: boolean): Promise<string> {
  const c = paint(colour);
  const meta = (typeof where.cmd.meta === "function" ? await where.cmd.meta() : await where.cmd.meta) ?? {};
  const args: ArgsDef = (typeof where.cmd.args === "function" ? await where.cmd.args() : await where.cmd.args) ?? {};
  const subs = await subCommandsOf(where.cmd);
  const positionals = Object.entries(args).filter(([, d]) => d.type === "positional");
  const own = Object.entries(args).filter(([k, d]) => d.type !== "positional" && !(k in globalArgs));
  const shared = [...Object.entries(globalArgs), ...Object.entries(HELP_FLAGS)] as [string, ArgDef][];
  const name = where.path.join(" ");
  const usage = [
    name,
    ...(Object.keys(subs).length ? [where.cmd.run || where.cmd.default ? "[COMMAND]" : "COMMAND"] : []),
    ...positionals.map(([k, d]) => (d.required === false ? `[${k.toUpperCase()}]` : k.toUpperCase())),
    "[OPTIONS]",
  ].join(" ");
  const rows = (entries: [string, string][]) => {
    const width = Math.max(...entries.map(([l]) => l.length));
    return entries.map(([label, text]) => `  ${c.cyan(label.padEnd(width))}  ${text}`);
  };
  const describe = (d: ArgDef) => `${d.description ?? ""}${d.default !== undefined && d.type !== "boolean" ? ` (default ${d.default})` : ""}`;
  const lines = [`${meta.description ?? ""}${meta.version && where.path.length === 1 ? ` (${meta.name} ${meta.version})` : ""}`, "", `${c.bold("USAGE")} ${usage}`];
  if (positionals.length) lines.push("", c.bold("ARGUMENTS"), ...rows(positionals.map(([k, d]) => [k.toUpperCase(), describe(d)])));
  if (own.length) lines.push("", c.bold("OPTIONS"), ...rows(own.map(([k, d]) => [flagLabel(k, d), describe(d)])));
  lines.push("", c.bold("GLOBAL OPTIONS"), ...rows(shared.map(([k, d]) => [flagLabel(k, d), describe(d)])));
  if (Object.keys(subs).length) {
    const entries: [string, string][] = [];
    for (const [sub, cmd] of Object.entries(subs)) {
      const subMeta = (typeof cmd.meta === "function" ? await cmd.meta() : await cmd.meta) ?? {};
      entries.push([sub, subMeta.description ?? ""]);
    }
    lines.push("", c.bold("COMMANDS"), ...rows(entries), "", `Use \`${name} COMMAND --help\` for more about a command.`);
  }
  return lines.join("\n");
}

/** A usage error as printed: the error first, then the usage of the command concerned. */
export async function renderUsageError(message: string, where: Where, colour: boolean): Promise<string> {
  const c = paint(colour);
  return `${c.red("error:")} ${message}\n\n${await renderUsage(where, colour)}`;
}
