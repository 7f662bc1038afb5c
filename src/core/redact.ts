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
  const values = [...new Set([...secretValues].flatMap(encodedForms))]
    .filter((v) => v.length >= MIN_SECRET_LENGTH)
    // Longest first, so a secret that contains another is masked whole.
    .sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  const pattern = new RegExp(values.map(escapeRegExp).join("|"), "g");
  return (text, options) => {
    const masked = text.replace(pattern, MASK);
    return options?.truncated ? maskCutTail(masked, values) : masked;
  };
}

/**
 * A secret rendered into a URL comes back percent-encoded in error messages and redirects, and one
 * echoed inside a JSON string comes back escaped; each form is masked like the raw value.
 */
function encodedForms(value: string): string[] {
  const forms = [value, JSON.stringify(value).slice(1, -1)];
  try {
    forms.push(encodeURIComponent(value), encodeURI(value));
  } catch {
    // A lone surrogate cannot be percent-encoded, so it cannot appear encoded either.
  }
  return forms;
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

/** `mongodb://user:secret@host` → `mongodb://user:***@host`, for status output and logs. */
export function redactUri(uri: string): string {
  // Greedy up to the last `@` before the path: a hand-written password may contain an unescaped `@`.
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]+:)([^/?#]*)@/i, `$1${MASK}@`);
}
