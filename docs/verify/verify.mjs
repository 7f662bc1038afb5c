// FleetCron-Signature verifier for Node.js (no dependencies). Copy `verifyFleetCron` into your
// receiver. Scheme (README, "Signed requests"):
//   FleetCron-Signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256>
//   v1 = HMAC-SHA256(secret of kid, `${t}.${METHOD}.${path and query as received}.${raw body}`)
// `keys` maps key ids to secrets: during a rotation, hold both the old and the new key.
// Run as a script, it reads {"method","target","body","signature","keys","now"?} as JSON on stdin
// and exits 0 ("ok") or 1 ("rejected: …"); the tests use that to check it against real requests.
import { createHmac, timingSafeEqual } from "node:crypto";

export const MAX_AGE_SEC = 300;

/** Returns null when the request is authentic, else why not. `target` is req.url in node:http. */
export function verifyFleetCron({ method, target, body, signature, keys, now = Math.floor(Date.now() / 1000) }) {
  if (typeof signature !== "string" || signature === "") return "no FleetCron-Signature header";
  const parts = Object.fromEntries(signature.split(",").map((p) => { const i = p.indexOf("="); return [p.slice(0, i).trim(), p.slice(i + 1).trim()]; }));
  const t = Number(parts.t);
  if (!/^\d+$/.test(parts.t ?? "") || !Number.isSafeInteger(t)) return "bad timestamp";
  if (Math.abs(now - t) > MAX_AGE_SEC) return `timestamp ${t} is more than ${MAX_AGE_SEC} s from now (${now})`;
  const secret = Object.hasOwn(keys, parts.kid ?? "") ? keys[parts.kid] : undefined;
  if (secret === undefined) return `unknown key id ${JSON.stringify(parts.kid)}`;
  if (!/^[0-9a-f]{64}$/.test(parts.v1 ?? "")) return "bad v1";
  const expected = createHmac("sha256", secret).update(`${t}.${method.toUpperCase()}.${target}.`).update(body ?? "").digest();
  return timingSafeEqual(expected, Buffer.from(parts.v1, "hex")) ? null : "signature does not match";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => (input += chunk));
  process.stdin.on("end", () => {
    const why = verifyFleetCron(JSON.parse(input));
    console.log(why === null ? "ok" : `rejected: ${why}`);
    process.exit(why === null ? 0 : 1);
  });
}
