/**
 * JSON parsing that can say where a file is broken. Bun's `JSON.parse` errors carry no position
 * ("Unexpected identifier"), which is useless in a 200-line jobs file, so on failure a small
 * scanner re-reads the text to find the line and column of the first error.
 */

export type JsonResult =
  | { ok: true; value: unknown }
  | { ok: false; message: string; line?: number; column?: number };

export function parseJson(text: string): JsonResult {
  // Editors on Windows like to start files with a byte-order mark; JSON.parse rejects it.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch (error) {
    const found = locateError(body);
    if (!found) return { ok: false, message: (error as Error).message };
    return { ok: false, message: found.message, ...lineAndColumn(body, found.offset) };
  }
}

/** `FILE:3:7: invalid JSON: …` — the form editors and terminals turn into a link. */
export function describeJsonError(file: string, result: Extract<JsonResult, { ok: false }>): string {
  const where = result.line === undefined ? file : `${file}:${result.line}:${result.column}`;
  return `${where}: invalid JSON: ${result.message}`;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - (before.lastIndexOf("\n") + 1) + 1 };
}

class SyntaxProblem {
  constructor(readonly offset: number, readonly message: string) {}
}

const MAX_DEPTH = 512;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD = /[A-Za-z_$][\w$]*/y;

function locateError(text: string): SyntaxProblem | null {
  try {
    const scanner = new Scanner(text);
    scanner.value(0);
    scanner.skipSpace();
    if (scanner.at < text.length) scanner.fail("unexpected text after the end of the JSON value");
    return null;
  } catch (problem) {
    if (problem instanceof SyntaxProblem) return problem;
    throw problem;
  }
}

class Scanner {
  at = 0;
  constructor(readonly text: string) {}

  fail(message: string): never {
    throw new SyntaxProblem(this.at, message);
  }

  skipSpace(): void {
    while (/[ \t\r\n]/.test(this.text[this.at] ?? "")) this.at++;
  }

  /** What sits at the cursor, phrased for "found …". */
  found(): string {
    const c = this.text[this.at];
    if (c === undefined) return "the end of the file";
    if (c === "/") return "a comment (JSON has no comments)";
    if (c === '"') return "a string";
    if (c === "'") return "a single quote (JSON strings need double quotes)";
    WORD.lastIndex = this.at;
    const word = WORD.exec(this.text);
    if (word) return `${JSON.stringify(word[0])} (names and strings need double quotes)`;
    return JSON.stringify(c);
  }

  value(depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    this.skipSpace();
    const c = this.text[this.at];
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const literal of ["true", "false", "null"]) {
      if (this.text.startsWith(literal, this.at)) {
        this.at += literal.length;
        return;
      }
    }
    this.fail(`expected a value, found ${this.found()}`);
  }

  object(depth: number): void {
    this.at++;
    this.skipSpace();
    if (this.text[this.at] === "}") return void this.at++;
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] === "}") this.fail('trailing comma before "}"');
      if (this.text[this.at] !== '"') this.fail(`expected a property name in double quotes, found ${this.found()}`);
      this.string();
      this.skipSpace();
      if (this.text[this.at] !== ":") this.fail(`expected ":" after the property name, found ${this.found()}`);
      this.at++;
      this.value(depth + 1);
      this.skipSpace();
      const c = this.text[this.at];
      if (c === "}") return void this.at++;
      if (c !== ",") this.fail(`expected "," or "}" after a property value, found ${this.found()}`);
      this.at++;
    }
  }

  array(depth: number): void {
    this.at++;
    this.skipSpace();
    if (this.text[this.at] === "]") return void this.at++;
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] === "]") this.fail('trailing comma before "]"');
      this.value(depth + 1);
      this.skipSpace();
      const c = this.text[this.at];
      if (c === "]") return void this.at++;
      if (c !== ",") this.fail(`expected "," or "]" after an array item, found ${this.found()}`);
      this.at++;
    }
  }

  string(): void {
    this.at++;
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) this.fail("unterminated string");
      if (c === '"') return void this.at++;
      if (c < " ") this.fail("line break or control character inside a string (write it as \\n, \\t, …)");
      if (c === "\\") {
        const next = this.text[this.at + 1] ?? "";
        if (next === "u" && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.at + 2, this.at + 6))) this.at += 6;
        else if ('"\\/bfnrt'.includes(next) && next !== "") this.at += 2;
        else this.fail(`invalid escape "\\${next}" in a string`);
      } else this.at++;
    }
  }

  number(): void {
    NUMBER.lastIndex = this.at;
    const match = NUMBER.exec(this.text);
    if (!match) this.fail(`invalid number, found ${this.found()}`);
    this.at += match[0].length;
  }
}
