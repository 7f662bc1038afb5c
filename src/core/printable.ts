/**
 * Text that came from a document, a response or another machine is echoed to terminals and logs;
 * a control character in it (ESC, a carriage return, a C1 code, a bidi override) could rewrite
 * what the reader sees or forge a log line. These escape such characters as `\uXXXX`, which is
 * also valid inside a JSON string, so they can be applied to JSON output too.
 */

// C0 and C1 controls, DEL, line/paragraph separators and the bidi embeddings, overrides and isolates.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_EXCEPT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** One value inside a line (a name, an id): every control character escaped, newlines and tabs too. */
export function printable(text: string): string {
  return text.replace(CONTROL, escape);
}

/** Whole output that may span lines: newlines and tabs kept, every other control character escaped. */
export function terminalSafe(text: string): string {
  return text.replace(CONTROL_EXCEPT_LINES, escape);
}

/** Whether a name holds a character `printable` would escape. */
export function hasControlCharacters(text: string): boolean {
  return new RegExp(CONTROL.source).test(text);
}
