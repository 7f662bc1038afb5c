import { describe, expect, test } from "bun:test";
import { ConfigError, StoreError } from "../../src/core/errors.ts";
import { openMongoStore } from "../../src/store/mongo.ts";
import { mongoUriSecrets, redactMongoUri } from "../../src/store/uri-redact.ts";

/**
 * A MongoDB URI is shown only masked (README, "Security"): password and secret-bearing options,
 * also when the URI is malformed. The store's `location` (what config check, status, the log and
 * /healthz print) and its error messages are checked, not only the function.
 */

const PW = "Qx7k2Zp";
const KEY_PW = "Kp9Lm4w";
const TOKEN = "Tk3Vb8n";

describe("redactMongoUri", () => {
  test("a well-formed URI: password masked, everything else as written", () => {
    expect(redactMongoUri(`mongodb://fleet:${PW}@h1:27017,h2/fleet?replicaSet=rs0&authSource=admin`)).toBe("mongodb://fleet:***@h1:27017,h2/fleet?replicaSet=rs0&authSource=admin");
    expect(redactMongoUri(`mongodb+srv://fleet:${PW}@cluster0.example.net/?retryWrites=true`)).toBe("mongodb+srv://fleet:***@cluster0.example.net/?retryWrites=true");
    expect(redactMongoUri("mongodb://127.0.0.1:27017/fleet")).toBe("mongodb://127.0.0.1:27017/fleet");
    expect(redactMongoUri("mongodb://CN=client@h/?authMechanism=MONGODB-X509")).toBe("mongodb://CN=client@h/?authMechanism=MONGODB-X509");
    // An `@` in an option after a clean authority is not taken for the credentials' end.
    expect(redactMongoUri(`mongodb://fleet:${PW}@h/?appName=ops@example`)).toBe("mongodb://fleet:***@h/?appName=ops@example");
  });

  test("sensitive options are masked, whatever their case", () => {
    const uri = `mongodb://fleet:${PW}@h/?tls=true&tlsCertificateKeyFilePassword=${KEY_PW}&AUTHMECHANISMPROPERTIES=AWS_SESSION_TOKEN:${TOKEN}&proxyPassword=${KEY_PW}x&sslPEMKeyPassword=${KEY_PW}y`;
    const shown = redactMongoUri(uri);
    expect(shown).toBe("mongodb://fleet:***@h/?tls=true&tlsCertificateKeyFilePassword=***&AUTHMECHANISMPROPERTIES=***&proxyPassword=***&sslPEMKeyPassword=***");
    expect(mongoUriSecrets(uri)).toEqual(expect.arrayContaining([PW, KEY_PW, TOKEN, `AWS_SESSION_TOKEN:${TOKEN}`]));
  });

  test("malformed: unescaped / ? @ : # in the password are masked whole", () => {
    for (const password of [`${PW}/a?b@c`, `p@${PW}`, `${PW}/x`, `a?${PW}`, `${PW}:x`, `${PW}#x`, `${PW}%zz`, `/${PW}@?`]) {
      for (const rest of ["127.0.0.1:27017/fleet?authSource=admin", "h1,h2/?replicaSet=rs0", "h"]) {
        const uri = `mongodb://fleet:${password}@${rest}`;
        const shown = redactMongoUri(uri);
        expect([uri, shown.includes(PW)]).toEqual([uri, false]);
        expect(shown.startsWith("mongodb://fleet:***@")).toBe(true);
        expect(mongoUriSecrets(uri)).toContain(password);
      }
    }
  });

  test("random passwords made of URI delimiters never show a piece of themselves", () => {
    const delimiters = ["/", "?", "@", ":", "#", "&", "=", "%", "%40", ",", "[", "]"];
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 500; i++) {
      const pieces = Array.from({ length: 1 + random(4) }, (_, k) => `S${i}x${k}q`);
      const password = pieces.map((p) => p + delimiters[random(delimiters.length)]).join("");
      const option = random(2) ? `&tlsCertificateKeyFilePassword=${pieces[0]}k` : "";
      const uri = `mongodb${random(2) ? "+srv" : ""}://user${i}:${password}@db${random(3)}.example:27017/fleet?authSource=admin${option}`;
      const shown = redactMongoUri(uri);
      for (const piece of pieces) expect([uri, shown, shown.includes(piece)]).toEqual([uri, shown, false]);
    }
  });
});

describe("the store shows only the masked URI", () => {
  test("a URI the driver refuses: the ConfigError names it masked", async () => {
    const uri = `mongodb://fleet:${PW}/a?b@c@127.0.0.1:1/fleet?tlsCertificateKeyFilePassword=${KEY_PW}`;
    const error = await openMongoStore({ uri, dbName: "x", serverSelectionTimeoutMS: 200 }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain("mongodb://fleet:***@127.0.0.1:1/fleet?tlsCertificateKeyFilePassword=***");
    for (const piece of [PW, KEY_PW, "/a?b", "b@c"]) expect(message).not.toContain(piece);
  });

  test("an unreachable server: the StoreError's location and message are masked", async () => {
    const uri = `mongodb://fleet:${PW}@127.0.0.1:1/fleet?authMechanismProperties=AWS_SESSION_TOKEN:${TOKEN}&authMechanism=MONGODB-AWS`;
    const error = await openMongoStore({ uri, dbName: "x", serverSelectionTimeoutMS: 200 }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    const message = (error as Error).message;
    expect(message).toContain("mongodb://fleet:***@127.0.0.1:1/fleet?authMechanismProperties=***&authMechanism=MONGODB-AWS");
    for (const piece of [PW, TOKEN]) expect(message).not.toContain(piece);
  }, 10_000);
});
