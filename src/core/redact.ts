/**
 * Secret values never reach run records or logs. Values shorter than this are not masked: masking
 * every "1" in a response would destroy the record and protect nothing.
 */
const MIN_SECRET_LENGTH = 3;
export const MASK = "***";

export interface RedactOptions {
  /**
   * The text was cut at a size limit, so a secret may be cut too: a trailing fragment that begins a
   * secret is masked as well, or a 64 KiB cap would leak the first half of a token.
   */
  truncated?: boolean;
}

export type Redactor = (text: string, options?: RedactOptions) => string;

export function createRedactor(secretValues: Iterable<string>): Redactor {
  const values = [...new Set([...secretValues].flatMap(normalisedForms))]
    .filter((v) => v.length >= MIN_SECRET_LENGTH)
    // Longest first: the truncated-tail check prefers the longest fragment.
    .sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  const patterns = values.map((v) => new RegExp(encodedPattern(v), "g"));
  return (text, options) => {
    const masked = maskUnion(text, patterns);
    return options?.truncated ? maskCutTail(masked, values) : masked;
  };
}

/**
 * Every span any secret matches, overlapping ones merged, is replaced by one mask: with secrets
 * `xyzabc` and `abcdef`, `xyzabcdef` becomes `***`, not `***def` (README, "What is masked and stored").
 */
function maskUnion(text: string, patterns: RegExp[]): string {
  const spans: [number, number][] = [];
  for (const pattern of patterns) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      spans.push([m.index, m.index + m[0].length]);
      // Overlapping occurrences of the same secret (`aaa` in `aaaa`) count too.
      pattern.lastIndex = m.index + 1;
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = "";
  let at = 0;
  let end = -1;
  for (const [from, to] of spans) {
    if (from > end) {
      if (end >= 0) out += MASK;
      out += text.slice(at, from);
      end = to;
    } else end = Math.max(end, to);
    at = end;
  }
  return out + MASK + text.slice(at);
}

/**
 * The URL parser rewrites what it is given: a host comes back lowercased (and as punycode), so a
 * secret inside a host is masked in those forms as well as written.
 */
function normalisedForms(value: string): string[] {
  const forms = [value];
  if (value.toLowerCase() !== value) forms.push(value.toLowerCase());
  // Only a value that could be a host by itself: `a@b` would "normalise" to `b`.
  if (/^[^\s@/:?#\\[\]%]+$/.test(value)) try {
    const host = new URL(`http://${value}/`).hostname;
    if (host && host !== value && host !== value.toLowerCase()) forms.push(host);
  } catch {
    // not a host
  }
  return forms;
}

/**
 * A pattern that matches the secret whatever mix of encodings each character came back in:
 * as written, percent-encoded (either hex case, `+` for a space, as `new URL` or a form encoder
 * writes it), or JSON-escaped (`\/`, `\"`, `\uXXXX` in either case, as JSON encoders write
 * non-ASCII or HTML-sensitive characters).
 */
function encodedPattern(value: string): string {
  let pattern = "";
  for (const char of value) pattern += `(?:${charForms(char).join("|")})`;
  return pattern;
}

const SHORT_JSON_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function charForms(char: string): string[] {
  const forms = [escapeRegExp(char)];
  if (SHORT_JSON_ESCAPES[char]) forms.push(escapeRegExp(SHORT_JSON_ESCAPES[char]));
  // JSON \uXXXX: one escape per UTF-16 unit (a surrogate pair for astral characters).
  let units = "";
  for (let i = 0; i < char.length; i++) units += `\\\\u${anyCaseHex(char.charCodeAt(i).toString(16).padStart(4, "0"))}`;
  forms.push(units);
  // Percent-encoding of the UTF-8 bytes.
  forms.push([...new TextEncoder().encode(char)].map((b) => `%${anyCaseHex(b.toString(16).padStart(2, "0"))}`).join(""));
  if (char === " ") forms.push("\\+");
  // Special URLs read a backslash as a slash.
  if (char === "\\") forms.push("/");
  return forms;
}

function anyCaseHex(hex: string): string {
  return [...hex].map((c) => (/[a-f]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join("");
}

function maskCutTail(text: string, values: string[]): string {
  // The longest fragment across all secrets, so a short secret's match cannot leave a longer one's.
  let cut = 0;
  for (const value of values) {
    for (let k = Math.min(value.length - 1, text.length); k >= Math.max(MIN_SECRET_LENGTH, cut + 1); k--) {
      if (text.endsWith(value.slice(0, k))) {
        cut = k;
        break;
      }
    }
  }
  return cut === 0 ? text : text.slice(0, -cut) + MASK;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

