"""FleetCron-Signature verifier for Python 3 (standard library only).

Copy `verify_fleetcron` into your receiver. Scheme (README, "Signed requests"):
    FleetCron-Signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256>
    v1 = HMAC-SHA256(secret of kid, f"{t}.{METHOD}.{path and query as received}.{raw body}")
`keys` maps key ids to secrets: during a rotation, hold both the old and the new key.
Run as a script, it reads {"method","target","body","signature","keys","now"?} as JSON on stdin
and exits 0 ("ok") or 1 ("rejected: ..."); the tests use that to check it against real requests.
"""
import hashlib
import hmac
import json
import re
import sys
import time

MAX_AGE_SEC = 300


def verify_fleetcron(method, target, body, signature, keys, now=None):
    """Returns None when the request is authentic, else why not.

    `target` is the request target as received (http.server: self.path); `body` is bytes or str.
    """
    if not signature:
        return "no FleetCron-Signature header"
    parts = {}
    for item in signature.split(","):
        name, _, value = item.partition("=")
        parts[name.strip()] = value.strip()
    if not re.fullmatch(r"\d+", parts.get("t", "")):
        return "bad timestamp"
    t = int(parts["t"])
    now = int(time.time()) if now is None else int(now)
    if abs(now - t) > MAX_AGE_SEC:
        return f"timestamp {t} is more than {MAX_AGE_SEC} s from now ({now})"
    secret = keys.get(parts.get("kid", ""))
    if secret is None:
        return f"unknown key id \"{parts.get('kid', '')}\""
    if not re.fullmatch(r"[0-9a-f]{64}", parts.get("v1", "")):
        return "bad v1"
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    signed = f"{t}.{method.upper()}.{target}.".encode("utf-8") + raw
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, parts["v1"]) else "signature does not match"


if __name__ == "__main__":
    req = json.load(sys.stdin)
    why = verify_fleetcron(req["method"], req["target"], req.get("body", ""), req.get("signature", ""), req["keys"], req.get("now"))
    print("ok" if why is None else f"rejected: {why}")
    sys.exit(0 if why is None else 1)
