/**
 * Signed requests (README, "Signed requests"): `FleetCron-Signature: t=<unix s>,kid=<id>,v1=<hex>`,
 * where v1 = HMAC-SHA256(secret, `<t>.<METHOD>.<path and query as sent>.<raw body>`). The receiver
 * recomputes it with the key named by `kid` and refuses an old `t`; docs/verify/ has verifiers.
 */
import { createHmac } from "node:crypto";

export const SIGNATURE_HEADER = "FleetCron-Signature";

export interface SigningKey {
  id: string;
  secret: string;
}

/** The exact bytes signed; a verifier builds the same string from what it received. */
export function signedPayload(t: number, method: string, pathAndQuery: string, body: string): string {
  return `${t}.${method.toUpperCase()}.${pathAndQuery}.${body}`;
}

export function signatureHeader(key: SigningKey, t: number, method: string, url: URL, body: string): string {
  const v1 = createHmac("sha256", key.secret).update(signedPayload(t, method, url.pathname + url.search, body)).digest("hex");
  return `t=${t},kid=${key.id},v1=${v1}`;
}
