/**
 * Secret values never reach run records or logs. Values shorter than this are not masked: masking
 * every "1" in a response would destroy the record and protect nothing.
 */
const MIN_SECRET_LENGTH = 3;
export const MASK = "***";

export type Redactor = (text: string) => string;

export function createRedactor(secretValues: Iterable<string>): Redactor {
  // Longest first, so a secret that contains another is masked whole.
  const values = [...new Set(secretValues)].filter((v) => v.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  const pattern = new RegExp(values.map(escapeRegExp).join("|"), "g");
  return (text) => text.replace(pattern, MASK);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `mongodb://user:secret@host` → `mongodb://user:***@host`, for status output and logs. */
export function redactUri(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/[^:/@]+:)([^@]*)@/i, `$1${MASK}@`);
}
