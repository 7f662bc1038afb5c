/**
 * Where a secret may go (README, "Secret hosts"). A secret written `{ "value", "hosts" }` is only
 * ever sent to those hosts: in the URL, a header or the body. Checked twice: when a job is
 * validated (its URL's host is known from the config's values) and before every request and
 * redirect hop at run time (a URL taken from a step's response, a redirect, a header that echoes).
 */
import { createRedactor } from "../core/redact.ts";

/** `api.example.com` matches itself; `*.example.com` matches any host below example.com (not itself). */
export function hostAllowed(host: string, hosts: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return hosts.some((allowed) => (allowed.startsWith("*.") ? h.endsWith(allowed.slice(1)) && h.length > allowed.length - 1 : h === allowed));
}

/** The config's values and secret hosts, for checking jobs before they run. */
export interface SecretScope {
  /** Secret and var values, to learn a URL's host when it starts with {{BASE_URL}}. */
  values: Record<string, string>;
  /** Secret name → lowercased hosts it may be sent to. */
  hosts: Record<string, readonly string[]>;
}

export interface BoundSecret {
  name: string;
  hosts: readonly string[];
  /** True when the text carries the value in any form the redactor knows (encoded, escaped). */
  foundIn: (text: string) => boolean;
}

export function boundSecrets(secrets: Record<string, string>, secretHosts: Record<string, readonly string[]> = {}): BoundSecret[] {
  return Object.entries(secretHosts)
    .filter(([name]) => Object.hasOwn(secrets, name))
    .map(([name, hosts]) => {
      const value = secrets[name]!;
      const mask = createRedactor([value, Buffer.from(value).toString("base64")]);
      // Values under the redactor's minimum length are not looked for: they match ordinary text.
      return { name, hosts, foundIn: (text: string) => mask(text) !== text };
    });
}

/**
 * Why this request may not be sent, or null. The host is the URL's after parsing (lowercased,
 * userinfo removed), so `https://api.example.com@evil.test/` goes to evil.test, as fetch would.
 */
export function secretHostRefusal(bound: readonly BoundSecret[], request: { url: string; headers: Record<string, string>; body: string }): string | null {
  if (bound.length === 0) return null;
  let host: string;
  try {
    host = new URL(request.url).hostname;
  } catch {
    return null; // sendRequest refuses the URL itself
  }
  const texts = [request.url, ...Object.values(request.headers), request.body];
  for (const secret of bound) {
    if (hostAllowed(host, secret.hosts)) continue;
    if (texts.some((t) => secret.foundIn(t))) return refusalText(secret.name, host, secret.hosts);
  }
  return null;
}

export function refusalText(name: string, host: string, hosts: readonly string[]): string {
  return `secret "${name}" may only be sent to ${hosts.map((h) => `"${h}"`).join(", ")} (config secrets.${name}.hosts), not to "${host}"; nothing was sent there`;
}
