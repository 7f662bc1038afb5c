/**
 * `fleetcron completion bash|zsh|fish`: a completion script for the commands, their flags and
 * the job names. The commands and flags are written into the script from the CLI's own
 * definitions; job names are asked for at each completion (`fleetcron completion --job-names`),
 * so they follow the store, and a store that does not answer within a second gives none rather
 * than a hanging prompt.
 */
import { defineCommand, type ArgsDef, type CommandDef } from "citty";
import { UsageError } from "../../core/errors.ts";
import { SERVICE_PLATFORMS } from "../../service/shared.ts";
import { openStore } from "../../store/index.ts";
import { globalArgs } from "../_globals.ts";
import { writeOut } from "../_output.ts";
import { loadRuntime } from "../_runtime.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];
/** How long `--job-names` waits for the store: a TAB must not hang on an unreachable server. */
export const JOB_NAMES_TIMEOUT_MS = 1000;

/** What a flag's value, or a command's positional argument, completes to. */
export type ValueKind = { kind: "none" } | { kind: "file" } | { kind: "job" } | { kind: "choice"; choices: readonly string[] };

export interface FlagSpec {
  names: string[];
  description: string;
  value: ValueKind | null;
}

export interface CommandSpec {
  /** Words after `fleetcron`: [] for the top level, ["jobs", "show"]. */
  path: string[];
  description: string;
  subcommands: CommandSpec[];
  flags: FlagSpec[];
  positional: ValueKind;
}

const FILE_ARGS = new Set(["config", "log-file", "binary", "home", "file"]);

function valueKind(name: string, arg: { type?: string; description?: string; options?: readonly string[] }): ValueKind {
  if (name === "job" || (arg.type === "positional" && name === "name" && /job/i.test(arg.description ?? ""))) return { kind: "job" };
  if (FILE_ARGS.has(name)) return { kind: "file" };
  if (name === "platform") return { kind: "choice", choices: SERVICE_PLATFORMS };
  if (name === "shell") return { kind: "choice", choices: SHELLS };
  if (arg.type === "enum" && arg.options) return { kind: "choice", choices: arg.options };
  return { kind: "none" };
}

const resolved = async <T>(value: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> => (typeof value === "function" ? await (value as () => T | Promise<T>)() : await value);

/** The command tree as citty defines it (every lazy command loaded); `any`: commands of every argument shape. */
export async function commandTree(command: CommandDef<any>, path: string[] = []): Promise<CommandSpec> {
  const meta = await resolved(command.meta);
  const args = ((await resolved(command.args)) ?? {}) as ArgsDef;
  const flags: FlagSpec[] = [];
  let positional: ValueKind = { kind: "none" };
  for (const [name, arg] of Object.entries(args)) {
    if (arg.type === "positional") {
      positional = valueKind(name, arg);
      continue;
    }
    const aliases = ([] as string[]).concat((arg as { alias?: string | string[] }).alias ?? []);
    flags.push({
      names: [`--${name}`, ...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`))],
      description: arg.description ?? "",
      value: arg.type === "boolean" ? null : valueKind(name, arg),
    });
  }
  // Accepted everywhere (main.ts takes them out before citty parses).
  for (const [name, arg] of Object.entries(globalArgs)) {
    if (!flags.some((f) => f.names[0] === `--${name}`)) flags.push({ names: [`--${name}`, ...((arg as { alias?: string[] }).alias ?? []).map((a) => `-${a}`)], description: arg.description, value: arg.type === "boolean" ? null : valueKind(name, arg) });
  }
  flags.push({ names: ["--help", "-h"], description: "Show this command's usage", value: null });
  const subs = ((await resolved(command.subCommands)) ?? {}) as Record<string, CommandDef | (() => Promise<CommandDef>)>;
  const subcommands: CommandSpec[] = [];
  for (const [name, sub] of Object.entries(subs)) subcommands.push(await commandTree((await resolved(sub))!, [...path, name]));
  return { path, description: meta?.description ?? "", subcommands, flags, positional };
}

function allCommands(root: CommandSpec): CommandSpec[] {
  return [root, ...root.subcommands.flatMap(allCommands)];
}

/** Single-quoted for bash, zsh and fish alike (fish also reads `\'` inside single quotes). */
function sq(text: string, shell: Shell): string {
  return shell === "fish" ? `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'` : `'${text.replaceAll("'", `'\\''`)}'`;
}

function valueFlags(root: CommandSpec): Map<string, ValueKind> {
  const flags = new Map<string, ValueKind>();
  for (const command of allCommands(root)) for (const flag of command.flags) if (flag.value) for (const name of flag.names) flags.set(name, flag.value);
  return flags;
}

function caseWords(kinds: Map<string, ValueKind>, want: (k: ValueKind) => boolean): string[] {
  return [...kinds].filter(([, k]) => want(k)).map(([name]) => name);
}

export function bashScript(root: CommandSpec): string {
  const kinds = valueFlags(root);
  const commandCases = allCommands(root).map((c) =>
    [
      `    ${sq(c.path.join(" "), "bash")})`,
      `      subs=${sq(c.subcommands.map((s) => s.path.at(-1)!).join(" "), "bash")}`,
      `      flags=${sq(c.flags.flatMap((f) => f.names).join(" "), "bash")}`,
      `      positional=${c.positional.kind === "choice" ? sq(`choice:${c.positional.choices.join(" ")}`, "bash") : c.positional.kind} ;;`,
    ].join("\n"),
  );
  const choiceCases = [...kinds].flatMap(([name, k]) => (k.kind === "choice" ? [`    ${name}) COMPREPLY=($(compgen -W ${sq(k.choices.join(" "), "bash")} -- "$cur")); return ;;`] : []));
  return `# bash completion for fleetcron: \`fleetcron completion bash\` (see the README for where to put it)
_fleetcron_job_names() {
  # IFS is a newline so that a job name with spaces stays one word; --config and its path are
  # therefore two expansions, not one "--config PATH" word.
  local IFS=$'\\n' name
  local -a names
  names=($(compgen -W "$("\${COMP_WORDS[0]}" \${_fleetcron_config:+--config} \${_fleetcron_config:+"$_fleetcron_config"} completion --job-names 2>/dev/null)" -- "$cur"))
  COMPREPLY=()
  for name in "\${names[@]}"; do COMPREPLY+=("$(printf '%q' "$name")"); done
}

_fleetcron() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmdpath="" word i subs flags positional candidate
  _fleetcron_config=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "\${COMP_WORDS[i-1]}" in
      --config|-c) _fleetcron_config="$word"; continue ;;
      ${caseWords(kinds, () => true).join("|")}) continue ;;
    esac
    [[ "$word" == -* ]] && continue
    candidate="\${cmdpath:+$cmdpath }$word"
    _fleetcron_spec "$candidate" && cmdpath="$candidate"
  done
  case "$prev" in
    ${caseWords(kinds, (k) => k.kind === "file").join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    ${caseWords(kinds, (k) => k.kind === "job").join("|") || "--job"}) _fleetcron_job_names; return ;;
${choiceCases.join("\n")}
    ${caseWords(kinds, (k) => k.kind === "none").join("|") || "--none"}) COMPREPLY=(); return ;;
  esac
  _fleetcron_spec "$cmdpath"
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); return; fi
  if [[ -n "$subs" ]]; then COMPREPLY=($(compgen -W "$subs" -- "$cur")); return; fi
  case "$positional" in
    job) _fleetcron_job_names ;;
    file) COMPREPLY=($(compgen -f -- "$cur")) ;;
    choice:*) COMPREPLY=($(compgen -W "\${positional#choice:}" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}

# Sets subs, flags and positional for a command path; fails for a path that is no command.
_fleetcron_spec() {
  case "$1" in
${commandCases.join("\n")}
    *) return 1 ;;
  esac
}

complete -F _fleetcron fleetcron
`;
}

export function zshScript(root: CommandSpec): string {
  const kinds = valueFlags(root);
  const commandCases = allCommands(root).map((c) =>
    [
      `    ${sq(c.path.join(" "), "zsh")})`,
      `      subs=(${c.subcommands.map((s) => sq(`${s.path.at(-1)}:${s.description.replaceAll(":", "\\:")}`, "zsh")).join(" ")})`,
      `      flags=(${c.flags.flatMap((f) => f.names.map((n) => sq(`${n}:${f.description.replaceAll(":", "\\:")}`, "zsh"))).join(" ")})`,
      `      positional=${c.positional.kind === "choice" ? sq(`choice:${c.positional.choices.join(" ")}`, "zsh") : c.positional.kind} ;;`,
    ].join("\n"),
  );
  const choiceCases = [...kinds].flatMap(([name, k]) => (k.kind === "choice" ? [`    ${name}) compadd -- ${k.choices.join(" ")}; return ;;`] : []));
  return `#compdef fleetcron
# zsh completion for fleetcron: \`fleetcron completion zsh\` (see the README for where to put it)
_fleetcron_job_names() {
  local -a names
  names=("\${(@f)$("\${words[1]}" \${config:+--config} \${config:+"$config"} completion --job-names 2>/dev/null)}")
  names=(\${names:#})
  compadd -a names
}

# Sets subs, flags and positional for a command path; fails for a path that is no command.
_fleetcron_spec() {
  case "$1" in
${commandCases.join("\n")}
    *) return 1 ;;
  esac
}

_fleetcron() {
  local cmdpath="" word candidate config="" positional
  local -a subs flags
  local i
  for ((i = 2; i < CURRENT; i++)); do
    word="\${words[i]}"
    case "\${words[i-1]}" in
      --config|-c) config="$word"; continue ;;
      ${caseWords(kinds, () => true).join("|")}) continue ;;
    esac
    [[ "$word" == -* ]] && continue
    candidate="\${cmdpath:+$cmdpath }$word"
    _fleetcron_spec "$candidate" && cmdpath="$candidate"
  done
  case "\${words[CURRENT-1]}" in
    ${caseWords(kinds, (k) => k.kind === "file").join("|")}) _files; return ;;
    ${caseWords(kinds, (k) => k.kind === "job").join("|") || "--job"}) _fleetcron_job_names; return ;;
${choiceCases.join("\n")}
    ${caseWords(kinds, (k) => k.kind === "none").join("|") || "--none"}) return ;;
  esac
  _fleetcron_spec "$cmdpath"
  if [[ "$PREFIX" == -* ]]; then _describe -t flags 'flag' flags; return; fi
  if (( \${#subs} )); then _describe -t commands 'command' subs; return; fi
  case "$positional" in
    job) _fleetcron_job_names ;;
    file) _files ;;
    choice:*) compadd -- \${=positional#choice:} ;;
  esac
}

if [[ "$funcstack[1]" == _fleetcron ]]; then _fleetcron "$@"; else compdef _fleetcron fleetcron; fi
`;
}

export function fishScript(root: CommandSpec): string {
  const lines = [
    "# fish completion for fleetcron: `fleetcron completion fish` (see the README for where to put it)",
    "# The command path typed so far: the words that name (sub)commands, flags and their values skipped.",
    "function __fleetcron_path",
    "    set -l words (commandline -opc)",
    "    set -l path",
    "    set -l skip 0",
    "    for word in $words[2..-1]",
    "        if test $skip -eq 1",
    "            set skip 0",
    "            continue",
    "        end",
    `        if contains -- $word ${[...valueFlags(root).keys()].join(" ")}`,
    "            set skip 1",
    "            continue",
    "        end",
    "        string match -q -- '-*' $word; and continue",
    "        set -l candidate (string join ' ' $path $word)",
    `        if contains -- "$candidate" ${allCommands(root).filter((c) => c.path.length).map((c) => sq(c.path.join(" "), "fish")).join(" ")}`,
    "            set path $path $word",
    "        end",
    "    end",
    "    string join ' ' $path",
    "end",
    "function __fleetcron_at",
    "    set -l current (__fleetcron_path)",
    '    test "$current" = "$argv[1]"',
    "end",
    "function __fleetcron_job_names",
    "    set -l words (commandline -opc)",
    "    set -l config",
    "    set -l i (contains -i -- --config $words; or contains -i -- -c $words)",
    "    and set config --config $words[(math $i + 1)]",
    "    $words[1] $config completion --job-names 2>/dev/null",
    "end",
    "complete -c fleetcron -f",
  ];
  for (const command of allCommands(root)) {
    const at = `-n ${sq(`__fleetcron_at ${sq(command.path.join(" "), "fish")}`, "fish")}`;
    for (const sub of command.subcommands) lines.push(`complete -c fleetcron ${at} -a ${sq(sub.path.at(-1)!, "fish")} -d ${sq(sub.description, "fish")}`);
    for (const flag of command.flags) {
      const names = flag.names.map((n) => (n.startsWith("--") ? `-l ${n.slice(2)}` : `-s ${n.slice(1)}`)).join(" ");
      const value = flag.value === null ? "" : flag.value.kind === "file" ? " -r -F" : flag.value.kind === "job" ? " -x -a '(__fleetcron_job_names)'" : flag.value.kind === "choice" ? ` -x -a ${sq(flag.value.choices.join(" "), "fish")}` : " -x";
      lines.push(`complete -c fleetcron ${at} ${names}${value} -d ${sq(flag.description, "fish")}`);
    }
    const p = command.positional;
    if (p.kind === "job") lines.push(`complete -c fleetcron ${at} -a '(__fleetcron_job_names)'`);
    else if (p.kind === "file") lines.push(`complete -c fleetcron ${at} -F`);
    else if (p.kind === "choice") lines.push(`complete -c fleetcron ${at} -a ${sq(p.choices.join(" "), "fish")}`);
  }
  return `${lines.join("\n")}\n`;
}

export function completionScript(shell: Shell, root: CommandSpec): string {
  return shell === "bash" ? bashScript(root) : shell === "zsh" ? zshScript(root) : fishScript(root);
}

/**
 * The store's job names, one a line, or nothing at all: a completion must neither print errors
 * into the prompt nor wait on a server that does not answer.
 */
async function printJobNames(): Promise<void> {
  const names = (async () => {
    const { config } = loadRuntime({ quietWarnings: true });
    const store = await openStore(config.store, { waitForServerMs: JOB_NAMES_TIMEOUT_MS });
    try {
      return (await store.listJobs()).map((job) => job.name);
    } finally {
      void store.close().catch(() => {});
    }
  })().catch(() => [] as string[]);
  const found = await Promise.race([names, Bun.sleep(JOB_NAMES_TIMEOUT_MS + 500).then(() => [] as string[])]);
  if (found.length) writeOut(`${[...new Set(found)].sort().join("\n")}\n`);
}

export default defineCommand({
  meta: { name: "completion", description: "Print a shell completion script: fleetcron completion bash|zsh|fish" },
  args: {
    ...globalArgs,
    shell: { type: "positional", required: false, description: `The shell: ${SHELLS.join(", ")}` },
    "job-names": { type: "boolean", description: "Print the store's job names, one a line (what the scripts call; nothing if the store does not answer within a second)" },
  },
  async run({ args }) {
    if (args["job-names"]) return printJobNames();
    const shell = args.shell as string | undefined;
    if (!shell || !(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`completion takes a shell: ${SHELLS.join(", ")} (got ${shell ? `"${shell}"` : "none"}), e.g. fleetcron completion bash > ~/.local/share/bash-completion/completions/fleetcron`);
    const { main } = await import("../index.ts");
    writeOut(completionScript(shell as Shell, await commandTree(main)));
  },
});
