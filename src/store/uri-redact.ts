/**
 * The one way a MongoDB connection string is shown (config check, status, logs, /healthz, store
 * errors): the password and the options that carry secrets are masked, also when the string is
 * malformed (README, "Security").
 *
 * A string the driver's own parser (`mongodb-connection-string-url`, which MongoClient uses)
 * accepts, and whose authority holds at most one `@`, is cut where that parser cuts it. Anything
 * else (a password with an unescaped `/`, `?`, `@` or `:`, which the parser refuses or, for `@`,
 * misreads as a host) is cut at the last `@`: everything before it is treated as credentials, so
 * a malformed string is masked too much rather than too little.
 */
import { MASK } from "../core/redact.ts";

// Its ESM wrapper leaves the class undefined under Bun, and its types are not reachable through
// its package exports: the CommonJS module is required and the little used here typed by hand.
const { ConnectionString } = require("mongodb-connection-string-url") as { ConnectionString: new (uri: string) => { username: string; password: string } };

/** Options whose values are secrets, lowercased (the driver reads option names case-insensitively). */
const SENSITIVE_OPTIONS = new Set(["tlscertificatekeyfilepassword", "sslpemkeypassword", "authmechanismproperties", "proxypassword", "password"]);

interface UriParts {
  scheme: string;
  /** Raw text before the `@`, or null when there are no credentials. */
  userinfo: string | null;
  /** Hosts, path and options, raw. */
  rest: string;
  /** The parser's decoded username and password, when the string is well formed. */
  parsed: { username: string; password: string | null } | null;
}

function split(uri: string): UriParts {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(uri)?.[0] ?? "";
  const body = uri.slice(scheme.length);
  let parsed: UriParts["parsed"] = null;
  try {
    const cs = new ConnectionString(uri);
    parsed = { username: safeDecode(cs.username), password: cs.password ? safeDecode(cs.password) : null };
  } catch {
    parsed = null;
  }
  const authorityEnd = body.search(/[/?]/);
  const authority = authorityEnd === -1 ? body : body.slice(0, authorityEnd);
  const wellFormed = parsed !== null && scheme !== "" && (authority.match(/@/g)?.length ?? 0) <= 1;
  const at = wellFormed ? authority.indexOf("@") : body.lastIndexOf("@");
  if (at === -1) return { scheme, userinfo: null, rest: body, parsed: wellFormed ? parsed : null };
  return { scheme, userinfo: body.slice(0, at), rest: body.slice(at + 1), parsed: wellFormed ? parsed : null };
}

/** `mongodb://fleet:s3cret@h/db?tlsCertificateKeyFilePassword=k` → `mongodb://fleet:***@h/db?tlsCertificateKeyFilePassword=***`. */
export function redactMongoUri(uri: string): string {
  const { scheme, userinfo, rest } = split(uri);
  return `${scheme}${userinfo === null ? "" : `${shownUserinfo(userinfo)}@`}${redactOptions(rest)}`;
}

function shownUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(":");
  // No password (x.509 or a user name alone) when the text is clean; otherwise nothing can be trusted as the name.
  if (colon === -1) return /[/?#@]/.test(userinfo) ? MASK : userinfo;
  const username = userinfo.slice(0, colon);
  return /[/?#@]/.test(username) ? MASK : `${username}:${MASK}`;
}

function redactOptions(rest: string): string {
  const q = rest.indexOf("?");
  if (q === -1) return rest;
  const hash = rest.indexOf("#", q);
  const query = hash === -1 ? rest.slice(q + 1) : rest.slice(q + 1, hash);
  const masked = query
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      return eq !== -1 && SENSITIVE_OPTIONS.has(safeDecode(pair.slice(0, eq)).toLowerCase()) ? `${pair.slice(0, eq + 1)}${MASK}` : pair;
    })
    .join("&");
  return `${rest.slice(0, q + 1)}${masked}${hash === -1 ? "" : rest.slice(hash)}`;
}

/**
 * Every secret the string carries, raw and decoded, for masking messages that may echo them (the
 * driver's errors): the password, the sensitive options' values and each of their properties.
 */
export function mongoUriSecrets(uri: string): string[] {
  const { userinfo, rest, parsed } = split(uri);
  const found: string[] = [];
  if (parsed?.password) found.push(parsed.password);
  if (userinfo !== null) {
    const colon = userinfo.indexOf(":");
    const password = colon === -1 ? (parsed ? "" : userinfo) : userinfo.slice(colon + 1);
    if (password) found.push(password, safeDecode(password));
    if (!parsed) found.push(userinfo, safeDecode(userinfo));
  }
  const q = rest.indexOf("?");
  if (q !== -1) {
    for (const pair of rest.slice(q + 1).split(/[&#]/)) {
      const eq = pair.indexOf("=");
      if (eq === -1 || !SENSITIVE_OPTIONS.has(safeDecode(pair.slice(0, eq)).toLowerCase())) continue;
      const raw = pair.slice(eq + 1);
      const value = safeDecode(raw);
      found.push(raw, value);
      // authMechanismProperties=AWS_SESSION_TOKEN:tok,… : the driver reports properties one by one.
      for (const property of value.split(",")) {
        const colon = property.indexOf(":");
        if (colon !== -1) found.push(property.slice(colon + 1));
      }
    }
  }
  return [...new Set(found.filter((s) => s.length > 0))];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
